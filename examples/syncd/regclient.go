package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
)

// The destinations and associations subcommands call the registry's API
// (Vault's /v1/sys/sync shapes) on the api block's listener, with its
// bearer token.

// regFlags are the flags of the registry subcommands.
type regFlags struct {
	*clientFlags
	typ  *string
	name *string
}

func newRegFlags(name, synopsis string, stderr io.Writer) *regFlags {
	cf := newClientFlags(name, synopsis, stderr)
	fs := cf.fs
	return &regFlags{
		clientFlags: cf,
		typ:         fs.String("type", "", "the destination's `type`"),
		name:        fs.String("name", "", "the destination's `name`"),
	}
}

// regClient builds the client of the registry's API: the daemon's API
// (see clientFlags.client).
func (rf *regFlags) regClient(stderr io.Writer) (*client, int) {
	return rf.client(stderr)
}

// vaultData is Vault's response envelope, with its data kept raw.
type vaultData struct {
	Data     json.RawMessage `json:"data"`
	Warnings []string        `json:"warnings"`
}

// regGet calls GET on the registry's API and returns the answer's data.
func (c *client) regGet(ctx context.Context, path string) (json.RawMessage, []byte, []string, error) {
	_, b, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	var env vaultData
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, nil, nil, fmt.Errorf("GET %s: %w", path, err)
	}
	return env.Data, b, env.Warnings, nil
}

func destPath(typ, name string) string {
	return "/v1/sys/sync/destinations/" + url.PathEscape(typ) + "/" + url.PathEscape(name)
}

// cmdDestinations lists the registry's destinations by type, or, with
// -type and -name, reads one (its connection details, credentials shown
// as *****). Exit status: 0 done, 1 the daemon cannot be asked or refused
// (no such destination), 2 usage.
func cmdDestinations(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	rf := newRegFlags("destinations", " [-type T -name N]", stderr)
	if ok, code := rf.parse(args, 0, 0); !ok {
		return code
	}
	if (*rf.typ == "") != (*rf.name == "") {
		fmt.Fprintln(stderr, "syncd destinations: give both -type and -name, or neither")
		return exitUsage
	}
	c, code := rf.regClient(stderr)
	if c == nil {
		return code
	}
	warn := func(ws []string) {
		for _, w := range ws {
			fmt.Fprintf(stderr, "syncd destinations: warning: %s\n", oneLine(w))
		}
	}
	if *rf.typ != "" {
		data, raw, ws, err := c.regGet(ctx, destPath(*rf.typ, *rf.name))
		if err != nil {
			return fail("destinations", *rf.json, fmt.Errorf("%s/%s: %w", *rf.typ, *rf.name, err), stdout, stderr)
		}
		warn(ws)
		if *rf.json {
			writeIndented(stdout, raw)
			return exitOK
		}
		var d struct {
			Name    string         `json:"name"`
			Type    string         `json:"type"`
			Details map[string]any `json:"connection_details"`
		}
		if err := json.Unmarshal(data, &d); err != nil {
			return fail("destinations", false, err, io.Discard, stderr)
		}
		fmt.Fprintf(stdout, "%s/%s\n", d.Type, d.Name)
		tw := table(stdout)
		fmt.Fprintln(tw, "FIELD\tVALUE")
		keys := make([]string, 0, len(d.Details))
		for k := range d.Details {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := d.Details[k]
			s, ok := v.(string)
			if !ok {
				b, _ := json.Marshal(v)
				s = string(b)
			}
			fmt.Fprintf(tw, "%s\t%s\n", k, oneLine(s))
		}
		_ = tw.Flush()
		return exitOK
	}

	_, b, err := c.do(ctx, http.MethodGet, "/v1/sys/sync/destinations?list=true", nil)
	var list map[string][]string
	var ae *apiCallError
	switch {
	case errors.As(err, &ae) && ae.Code == http.StatusNotFound && ae.Body != nil:
		// Vault answers a LIST of nothing with 404.
		b, err = []byte(`{"data":{"key_info":{},"keys":[]}}`), nil
	case err != nil:
		return fail("destinations", *rf.json, err, stdout, stderr)
	}
	var env struct {
		Data struct {
			KeyInfo map[string][]string `json:"key_info"`
		} `json:"data"`
		Warnings []string `json:"warnings"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return fail("destinations", false, err, io.Discard, stderr)
	}
	warn(env.Warnings)
	list = env.Data.KeyInfo
	if *rf.json {
		writeIndented(stdout, b)
		return exitOK
	}
	if len(list) == 0 {
		fmt.Fprintln(stdout, "no destinations")
		return exitOK
	}
	types := make([]string, 0, len(list))
	for t := range list {
		types = append(types, t)
	}
	sort.Strings(types)
	tw := table(stdout)
	fmt.Fprintln(tw, "TYPE\tNAME")
	for _, t := range types {
		names := append([]string(nil), list[t]...)
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(tw, "%s\t%s\n", t, n)
		}
	}
	_ = tw.Flush()
	return exitOK
}

// cmdAssociations lists the secrets associated with a destination, with
// their sync status. Exit status: 0 done, every association SYNCED or
// PENDING; 1 the daemon cannot be asked or refused (no such destination),
// or an association's status is an error or UNSYNCED; 2 usage.
func cmdAssociations(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	rf := newRegFlags("associations", " -type T -name N", stderr)
	if ok, code := rf.parse(args, 0, 0); !ok {
		return code
	}
	if *rf.typ == "" || *rf.name == "" {
		fmt.Fprintln(stderr, "syncd associations: -type and -name are required")
		rf.fs.Usage()
		return exitUsage
	}
	c, code := rf.regClient(stderr)
	if c == nil {
		return code
	}
	data, raw, ws, err := c.regGet(ctx, destPath(*rf.typ, *rf.name)+"/associations")
	if err != nil {
		return fail("associations", *rf.json, fmt.Errorf("%s/%s: %w", *rf.typ, *rf.name, err), stdout, stderr)
	}
	for _, w := range ws {
		fmt.Fprintf(stderr, "syncd associations: warning: %s\n", oneLine(w))
	}
	var d struct {
		Secrets map[string]struct {
			Accessor   string `json:"accessor"`
			SecretName string `json:"secret_name"`
			SyncStatus string `json:"sync_status"`
			UpdatedAt  string `json:"updated_at"`
		} `json:"associated_secrets"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return fail("associations", false, err, io.Discard, stderr)
	}
	bad := false
	keys := make([]string, 0, len(d.Secrets))
	for k, a := range d.Secrets {
		keys = append(keys, k)
		bad = bad || (a.SyncStatus != "SYNCED" && a.SyncStatus != "PENDING")
	}
	sort.Strings(keys)
	if *rf.json {
		writeIndented(stdout, raw)
	} else if len(keys) == 0 {
		fmt.Fprintf(stdout, "no associations of %s/%s\n", *rf.typ, *rf.name)
	} else {
		tw := table(stdout)
		fmt.Fprintln(tw, "ACCESSOR\tSECRET\tSTATUS\tUPDATED")
		for _, k := range keys {
			a := d.Secrets[k]
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Accessor, a.SecretName, a.SyncStatus, dash(a.UpdatedAt))
		}
		_ = tw.Flush()
	}
	if bad {
		return exitFailure
	}
	return exitOK
}
