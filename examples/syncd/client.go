package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/secretsync/secretsync/registry/httpapi"
)

// The subcommands that talk to a running daemon over its HTTP API (package
// httpapi, on the api block's listener), with the token of the api
// block's token_file. They print what the API answers (names, statuses,
// times, one-line errors: the API carries no secret value) and never the
// body of an answer that is not the API's JSON.

// subcommand returns the function of the subcommand named name, or nil.
func subcommand(name string) func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	switch name {
	case "status":
		return cmdStatus
	case "conflicts":
		return cmdConflicts
	case "resolve":
		return cmdResolve
	case "trigger":
		return cmdTrigger
	case "plan":
		return cmdPlan
	case "destinations":
		return cmdDestinations
	case "associations":
		return cmdAssociations
	}
	return nil
}

// maxAnswer bounds the size of an answer the client reads.
const maxAnswer = 16 << 20

// client calls the daemon's API at base (scheme and host).
type client struct {
	base  string
	http  *http.Client
	token string // sent as a bearer token
}

// clientFlags are the flags every subcommand takes.
type clientFlags struct {
	fs        *flag.FlagSet
	addr      *string
	config    *string
	tokenFile *string
	json      *bool
	timeout   *time.Duration
	args      []string // the positional arguments, once parsed
}

func newClientFlags(name, synopsis string, stderr io.Writer) *clientFlags {
	fs := flag.NewFlagSet("syncd "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := &clientFlags{
		fs:        fs,
		addr:      fs.String("addr", "", "the API's `address` (host:port or URL); default: listen of the api block in the -config file, else "+defaultAPIListen),
		config:    fs.String("config", "syncd.hcl", "configuration `file` whose api block gives the address and the token file when -addr or -token-file is not set"),
		tokenFile: fs.String("token-file", "", "`file` holding the API token; default: token_file of the api block in the -config file"),
		json:      fs.Bool("json", false, "print the daemon's JSON instead of a table"),
		timeout:   fs.Duration("timeout", 30*time.Second, "how long to wait for the daemon's answer"),
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: syncd %s [-addr address | -config file] [-token-file file] [-json] [-timeout d]%s\n\n", name, synopsis)
		fs.PrintDefaults()
	}
	return cf
}

// parse parses args and checks that nargs (min..max) positional arguments
// remain; the second result is the exit status when the first is false.
func (cf *clientFlags) parse(args []string, min, max int) (bool, int) {
	// Flags may follow the positional arguments too.
	var pos []string
	for {
		if err := cf.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return false, exitOK
			}
			return false, exitUsage
		}
		if cf.fs.NArg() == 0 {
			break
		}
		if rest := cf.fs.Args(); len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			pos = append(pos, rest...) // after "--", every argument is positional
			break
		}
		pos = append(pos, cf.fs.Arg(0))
		args = cf.fs.Args()[1:]
	}
	if len(pos) < min || len(pos) > max {
		fmt.Fprintf(cf.fs.Output(), "%s: want %s, got %d arguments\n", cf.fs.Name(), argCount(min, max), len(pos))
		cf.fs.Usage()
		return false, exitUsage
	}
	cf.args = pos
	return true, exitOK
}

func argCount(min, max int) string {
	switch {
	case min == max:
		return fmt.Sprintf("%d arguments", min)
	case max > 1<<20:
		return fmt.Sprintf("at least %d arguments", min)
	}
	return fmt.Sprintf("%d to %d arguments", min, max)
}

// client builds the client of the daemon's API: the address from -addr,
// else listen of the api block in the -config file, else
// 127.0.0.1:8201; the token from -token-file, else token_file of the api
// block. A file named with -config that cannot be loaded, or no token
// file, is a usage error (2); a token file that cannot be read, or is
// empty, a failure (1).
func (cf *clientFlags) client(stderr io.Writer) (*client, int) {
	addr, tokenFile := *cf.addr, *cf.tokenFile
	if addr == "" || tokenFile == "" {
		configSet := false
		cf.fs.Visit(func(f *flag.Flag) { configSet = configSet || f.Name == "config" })
		if _, err := os.Stat(*cf.config); err == nil || configSet {
			cfg, err := LoadConfig(*cf.config)
			if err != nil {
				fmt.Fprintf(stderr, "%s: %v\n", cf.fs.Name(), err)
				return nil, exitUsage
			}
			if a := cfg.api(); a != nil {
				addr = cmp.Or(addr, a.Listen)
				tokenFile = cmp.Or(tokenFile, a.TokenFile)
			}
		}
	}
	base, err := baseURL(addr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: -addr: %v\n", cf.fs.Name(), err)
		return nil, exitUsage
	}
	if *cf.timeout <= 0 {
		fmt.Fprintf(stderr, "%s: -timeout must be positive\n", cf.fs.Name())
		return nil, exitUsage
	}
	if tokenFile == "" {
		fmt.Fprintf(stderr, "%s: no token: give -token-file, or a -config file with an api block (the daemon serves its API only there, with a token)\n", cf.fs.Name())
		return nil, exitUsage
	}
	b, err := os.ReadFile(tokenFile)
	if err == nil && strings.TrimSpace(string(b)) == "" {
		err = errors.New("empty")
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		fmt.Fprintf(stderr, "%s: token file %s: %v\n", cf.fs.Name(), tokenFile, err)
		return nil, exitFailure
	}
	return &client{base: base, http: &http.Client{Timeout: *cf.timeout}, token: strings.TrimSpace(string(b))}, exitOK
}

// baseURL turns an address (host:port, :port, or an http or https URL)
// into the API's base URL. A listen address on every interface (":8080",
// "0.0.0.0:8080", "[::]:8080") is called on loopback; "" is the API's
// default, 127.0.0.1:8201.
func baseURL(addr string) (string, error) {
	if addr == "" {
		addr = defaultAPIListen
	}
	if strings.Contains(addr, "://") {
		u, err := url.Parse(addr)
		if err != nil {
			return "", err
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", fmt.Errorf("%q: want host:port or an http(s) URL", addr)
		}
		return u.Scheme + "://" + u.Host + strings.TrimSuffix(u.Path, "/"), nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%q: want host:port or an http(s) URL", addr)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if ip != nil && ip.To4() == nil {
			host = "::1"
		} else {
			host = "127.0.0.1"
		}
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// apiCallError is an answer that is not a success: the daemon's one-line
// error, or (for an answer that is not the API's JSON) its status alone.
type apiCallError struct {
	Code    int
	Message string
	Body    []byte // the JSON body, when the answer was the API's
}

func (e *apiCallError) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Code)
	}
	return fmt.Sprintf("HTTP %d: not an answer of the syncd API", e.Code)
}

// do calls the API and returns the body of a 2xx JSON answer. Other
// answers are an *apiCallError; a transport failure is returned as is,
// without its URL's query (there is none).
func (c *client) do(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("reading the answer: %w", err)
	}
	isJSON := strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && json.Valid(b)
	if resp.StatusCode/100 != 2 {
		e := &apiCallError{Code: resp.StatusCode}
		if isJSON {
			var ae struct {
				Errors []string `json:"errors"` // the API's error body (Vault's)
			}
			_ = json.Unmarshal(b, &ae)
			e.Message, e.Body = oneLine(strings.Join(ae.Errors, "; ")), b
		}
		return resp.StatusCode, nil, e
	}
	if !isJSON {
		return resp.StatusCode, nil, &apiCallError{Code: resp.StatusCode}
	}
	return resp.StatusCode, b, nil
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// fail reports a failed call: with -json, the daemon's JSON error body (if
// any) goes to stdout; the one-line error always goes to stderr.
func fail(name string, jsonOut bool, err error, stdout, stderr io.Writer) int {
	var ae *apiCallError
	if jsonOut && errors.As(err, &ae) && ae.Body != nil {
		writeIndented(stdout, ae.Body)
	}
	fmt.Fprintf(stderr, "syncd %s: %v\n", name, err)
	return exitFailure
}

// writeIndented writes a JSON document indented, one value a line.
func writeIndented(w io.Writer, b []byte) {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return
	}
	out.WriteByte('\n')
	_, _ = w.Write(out.Bytes())
}

func writeJSONTo(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func table(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// syncsPath is the path of the API's sync resources.
const syncsPath = "/v1/secretsync/syncs"

func syncPath(name, what string) string {
	p := syncsPath + "/" + url.PathEscape(name)
	if what != "" {
		p += "/" + what
	}
	return p
}

// data calls the API and returns the data of its answer, raw.
func (c *client) data(ctx context.Context, method, path string, body any) (int, json.RawMessage, error) {
	status, b, err := c.do(ctx, method, path, body)
	if err != nil {
		return status, nil, err
	}
	var env vaultData
	if err := json.Unmarshal(b, &env); err != nil {
		return status, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return status, env.Data, nil
}

// listSyncs calls GET /v1/secretsync/syncs; the second result is the list
// in JSON.
func (c *client) listSyncs(ctx context.Context) ([]httpapi.SyncInfo, []byte, error) {
	_, data, err := c.data(ctx, http.MethodGet, syncsPath, nil)
	if err != nil {
		return nil, nil, err
	}
	var out struct {
		Syncs json.RawMessage `json:"syncs"`
	}
	var list []httpapi.SyncInfo
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, nil, fmt.Errorf("GET %s: %w", syncsPath, err)
	}
	if err := json.Unmarshal(out.Syncs, &list); err != nil {
		return nil, nil, fmt.Errorf("GET %s: %w", syncsPath, err)
	}
	return list, out.Syncs, nil
}

// cmdStatus prints every sync with its latest sync record and its flagged
// conflicts. Exit status: 1 when the daemon cannot be asked or a sync's
// latest round failed (or its status cannot be read), otherwise 3 when
// conflicts are flagged, otherwise 0.
func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cf := newClientFlags("status", "", stderr)
	if ok, code := cf.parse(args, 0, 0); !ok {
		return code
	}
	c, code := cf.client(stderr)
	if c == nil {
		return code
	}
	syncs, raw, err := c.listSyncs(ctx)
	if err != nil {
		return fail("status", *cf.json, err, stdout, stderr)
	}
	failed, conflicts := false, false
	for _, s := range syncs {
		failed = failed || (s.Sync != nil && s.Sync.Status == "failed") || s.Error != ""
		conflicts = conflicts || s.Conflicts > 0
	}
	if *cf.json {
		writeIndented(stdout, raw)
	} else {
		tw := table(stdout)
		fmt.Fprintln(tw, "SYNC\tMODE\tAUTO\tSTATUS\tCONFLICTS\tUPDATED\tMESSAGE")
		for _, s := range syncs {
			rec := s.Sync
			switch {
			case s.Error != "":
				rec = &httpapi.Record{Status: "unknown", Message: s.Error}
			case rec == nil:
				rec = &httpapi.Record{Status: "never run"}
			}
			auto := "manual"
			if s.AutoSync {
				auto = "auto"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", s.Name, s.Mode, auto, rec.Status, s.Conflicts, dash(rfc3339(rec.UpdatedAt)), oneLine(rec.Message))
		}
		_ = tw.Flush()
	}
	switch {
	case failed:
		return exitFailure
	case conflicts:
		return exitConflicts
	}
	return exitOK
}

// syncConflict is a flagged conflict with its sync, as -json prints it.
type syncConflict struct {
	Sync string `json:"sync"`
	httpapi.Conflict
}

// cmdConflicts prints the flagged conflicts of the syncs named, or of
// every sync. Exit status: 1 when the daemon cannot be asked, 3 when
// conflicts are flagged, 0 when none are.
func cmdConflicts(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cf := newClientFlags("conflicts", " [sync ...]", stderr)
	if ok, code := cf.parse(args, 0, 1<<30); !ok {
		return code
	}
	c, code := cf.client(stderr)
	if c == nil {
		return code
	}
	names := cf.args
	if len(names) == 0 {
		syncs, _, err := c.listSyncs(ctx)
		if err != nil {
			return fail("conflicts", *cf.json, err, stdout, stderr)
		}
		for _, s := range syncs {
			names = append(names, s.Name)
		}
	}
	out := []syncConflict{}
	for _, n := range names {
		_, data, err := c.data(ctx, http.MethodGet, syncPath(n, "conflicts"), nil)
		if err != nil {
			return fail("conflicts", *cf.json, fmt.Errorf("sync %q: %w", n, err), stdout, stderr)
		}
		var cs struct {
			Conflicts []httpapi.Conflict `json:"conflicts"`
		}
		if err := json.Unmarshal(data, &cs); err != nil {
			return fail("conflicts", *cf.json, fmt.Errorf("sync %q: %w", n, err), stdout, stderr)
		}
		for _, x := range cs.Conflicts {
			out = append(out, syncConflict{Sync: n, Conflict: x})
		}
	}
	if *cf.json {
		writeJSONTo(stdout, out)
	} else if len(out) == 0 {
		fmt.Fprintln(stdout, "no conflicts flagged")
	} else {
		tw := table(stdout)
		fmt.Fprintln(tw, "SYNC\tKEY\tDESTINATION KEY\tCLASS\tFLAGGED")
		for _, x := range out {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", x.Sync, x.Key, dash(x.DestinationKey), x.Class, dash(rfc3339(x.FlaggedAt)))
		}
		_ = tw.Flush()
	}
	if len(out) > 0 {
		return exitConflicts
	}
	return exitOK
}

// cmdResolve settles one flagged conflict: syncd resolve sync key
// keep-source|keep-destination. Exit status: 0 resolved, 1 refused (no
// such sync or conflict, or the resolution failed), 2 usage.
func cmdResolve(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cf := newClientFlags("resolve", " sync key keep-source|keep-destination", stderr)
	if ok, code := cf.parse(args, 3, 3); !ok {
		return code
	}
	name, key, action := cf.args[0], cf.args[1], cf.args[2]
	keep, ok := map[string]string{"keep-source": "source", "keep-destination": "destination"}[action]
	if !ok {
		fmt.Fprintf(stderr, "syncd resolve: %q: want keep-source or keep-destination\n", action)
		return exitUsage
	}
	if name == "" || key == "" {
		fmt.Fprintln(stderr, "syncd resolve: the sync and the key must not be empty")
		return exitUsage
	}
	c, code := cf.client(stderr)
	if c == nil {
		return code
	}
	_, data, err := c.data(ctx, http.MethodPost, syncPath(name, "resolve"), httpapi.ResolveRequest{Key: key, Action: action})
	if err != nil {
		return fail("resolve", *cf.json, fmt.Errorf("sync %q, key %q: %w", name, key, err), stdout, stderr)
	}
	if *cf.json {
		writeIndented(stdout, data)
		return exitOK
	}
	fmt.Fprintf(stdout, "resolved %s in sync %s: kept the %s's value\n", key, name, keep)
	return exitOK
}

// cmdTrigger asks for a round of a sync now. An auto-synced sync runs it in
// the background (the daemon answers at once); a manual one runs it during
// the call, and its report is printed. Exit status: 0 triggered or clean,
// 1 failure (the daemon cannot be asked, no such sync, the manual round or
// a key in it failed), 3 the manual round flagged conflicts, 2 usage.
func cmdTrigger(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cf := newClientFlags("trigger", " sync", stderr)
	if ok, code := cf.parse(args, 1, 1); !ok {
		return code
	}
	name := cf.args[0]
	c, code := cf.client(stderr)
	if c == nil {
		return code
	}
	status, data, err := c.data(ctx, http.MethodPost, syncPath(name, "trigger"), nil)
	if err != nil {
		if !*cf.json {
			writeErrorReport(stdout, err, func(data []byte) *httpapi.Report {
				var res httpapi.TriggerResult
				_ = json.Unmarshal(data, &res)
				return res.Report
			})
		}
		return fail("trigger", *cf.json, fmt.Errorf("sync %q: %w", name, err), stdout, stderr)
	}
	if *cf.json {
		writeIndented(stdout, data)
	}
	if status == http.StatusAccepted {
		if !*cf.json {
			fmt.Fprintf(stdout, "triggered %s: a round runs in the background (see syncd status)\n", name)
		}
		return exitOK
	}
	var res httpapi.TriggerResult
	if err := json.Unmarshal(data, &res); err != nil || res.Report == nil {
		if err == nil {
			err = errors.New("the answer has no report")
		}
		return fail("trigger", false, fmt.Errorf("sync %q: %w", name, err), io.Discard, stderr)
	}
	if !*cf.json {
		writeReport(stdout, res.Report)
	}
	return reportExit(res.Report)
}

// cmdPlan prints what a round of a sync would change: keys and actions,
// nothing written. Exit status: 0 clean, 1 failure (the daemon cannot be
// asked, no such sync, the plan failed or was refused, as a mass deletion,
// or a key in it failed), 3 the round would flag conflicts, 2 usage.
func cmdPlan(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cf := newClientFlags("plan", " sync", stderr)
	if ok, code := cf.parse(args, 1, 1); !ok {
		return code
	}
	name := cf.args[0]
	c, code := cf.client(stderr)
	if c == nil {
		return code
	}
	_, data, err := c.data(ctx, http.MethodGet, syncPath(name, "plan"), nil)
	if err != nil {
		if !*cf.json {
			writeErrorReport(stdout, err, func(data []byte) *httpapi.Report {
				var rep *httpapi.Report
				_ = json.Unmarshal(data, &rep)
				return rep
			})
		}
		return fail("plan", *cf.json, fmt.Errorf("sync %q: %w", name, err), stdout, stderr)
	}
	var rep httpapi.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		return fail("plan", false, fmt.Errorf("sync %q: %w", name, err), io.Discard, stderr)
	}
	if *cf.json {
		writeIndented(stdout, data)
	} else {
		writeReport(stdout, &rep)
	}
	return reportExit(&rep)
}

// reportExit is the exit status of a round's report (or a plan's): 1 when
// a key failed, 3 when conflicts are (or would be) flagged, 0 otherwise.
func reportExit(rep *httpapi.Report) int {
	switch {
	case rep.Totals.Failed > 0:
		return exitFailure
	case rep.Totals.Conflicts > 0 || (rep.Flagged != nil && *rep.Flagged > 0):
		return exitConflicts
	}
	return exitOK
}

// writeErrorReport prints the report that an error answer of the API
// carries in its data (a refused or failed round), if it has one; report
// picks it from the data.
func writeErrorReport(w io.Writer, err error, report func(data []byte) *httpapi.Report) {
	var ae *apiCallError
	if !errors.As(err, &ae) || ae.Body == nil {
		return
	}
	var body struct {
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal(ae.Body, &body) != nil || len(body.Data) == 0 {
		return
	}
	if rep := report(body.Data); rep != nil {
		writeReport(w, rep)
	}
}

// writeReport prints a round's report: the keys that did not stay
// unchanged, then the totals.
func writeReport(w io.Writer, rep *httpapi.Report) {
	dry := ""
	if rep.DryRun {
		dry = ", a plan: nothing written"
	}
	fmt.Fprintf(w, "sync %s, run %s (%s, %s%s)\n", rep.Sync, dash(rep.RunID), rep.Operation, rep.Mode, dry)
	tw := table(w)
	rows := 0
	for _, k := range rep.Keys {
		if k.Action == "unchanged" {
			continue
		}
		if rows == 0 {
			fmt.Fprintln(tw, "KEY\tDESTINATION KEY\tACTION\tCLASS\tERROR")
		}
		rows++
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", dash(k.Key), dash(k.DestinationKey), k.Action, k.Class, oneLine(k.Error))
	}
	_ = tw.Flush()
	t := rep.Totals
	fmt.Fprintf(w, "created %d, updated %d, deleted %d, imported %d, unchanged %d, conflicts %d, unmanaged %d, skipped %d, failed %d\n",
		t.Created, t.Updated, t.Deleted, t.Imported, t.Unchanged, t.Conflicts, t.Unmanaged, t.Skipped, t.Failed)
	if rep.Flagged != nil && *rep.Flagged > 0 {
		fmt.Fprintf(w, "CONFLICTS: %d flagged, waiting for a resolution\n", *rep.Flagged)
	}
}
