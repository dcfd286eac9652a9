package vaultkv_test

import (
	"fmt"

	"github.com/secretsync/secretsync/vaultkv"
)

// The policy for a bidirectional sync of secret/app/* in the secret-key
// layout, watched for changes, with its state and locks in Vault.
func ExamplePolicy() {
	policy, err := vaultkv.Policy(vaultkv.PolicySpec{
		KV: []vaultkv.KVAccess{{
			Options: vaultkv.Options{Mount: "secret", Path: "app", Layout: vaultkv.SecretKey},
			Write:   true,
			Poll:    true,
		}},
		Stores: []vaultkv.StoreAccess{{Options: vaultkv.StoreOptions{Mount: "secret"}, Lock: true}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(policy)
	// Output:
	// path "secret/data/app/*" {
	//   capabilities = ["read", "update"]
	// }
	//
	// path "secret/data/secretsync/fingerprint-key" {
	//   capabilities = ["create", "read"]
	// }
	//
	// path "secret/data/secretsync/lock/*" {
	//   capabilities = ["create", "read", "update"]
	// }
	//
	// path "secret/data/secretsync/members/*" {
	//   capabilities = ["create", "read", "update"]
	// }
	//
	// path "secret/data/secretsync/state/*" {
	//   capabilities = ["create", "read", "update"]
	// }
	//
	// path "secret/delete/app/*" {
	//   capabilities = ["update"]
	// }
	//
	// path "secret/metadata/app/*" {
	//   capabilities = ["create", "read", "patch", "list"]
	// }
	//
	// path "secret/metadata/secretsync/members/*" {
	//   capabilities = ["delete", "list"]
	// }
}
