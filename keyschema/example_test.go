package keyschema_test

import (
	"fmt"

	"github.com/secretsync/secretsync/keyschema"
)

func Example() {
	s, err := keyschema.Parse("{{environment}}/APP_{{secretKey}}")
	if err != nil {
		panic(err)
	}
	prod, err := s.Bind("prod")
	if err != nil {
		panic(err)
	}
	dk, _ := prod.Render("DB_URL")
	fmt.Println(dk)
	for _, k := range []string{"prod/APP_DB_URL", "prod/OTHER", "dev/APP_DB_URL"} {
		key, managed := prod.Match(k)
		fmt.Printf("%s managed=%v key=%q\n", k, managed, key)
	}
	// Output:
	// prod/APP_DB_URL
	// prod/APP_DB_URL managed=true key="DB_URL"
	// prod/OTHER managed=false key=""
	// dev/APP_DB_URL managed=false key=""
}

func ExampleParse_error() {
	_, err := keyschema.Parse("APP_{{key}}")
	fmt.Println(err)
	// Output:
	// keyschema: template "APP_{{key}}" at position 4: unknown placeholder "{{key}}"; only {{secretKey}} and {{environment}} exist
}

func ExampleOverlap() {
	s := keyschema.MustParse("{{environment}}_{{secretKey}}")
	prod, _ := s.Bind("prod")
	prodEU, _ := s.Bind("prod_EU")
	fmt.Println(keyschema.Overlap(prod, prodEU))
	// Output:
	// keyschema: secret keys "EU_X" (environment "prod") and "X" (environment "prod_EU") both map to destination key "prod_EU_X"
}
