package faults_test

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// row is one line of the fault matrix: a fault, what its test does, the
// outcome the library promises, and the test that proves it.
type row struct {
	Fault   string
	Does    string
	Outcome string
	Test    string // a Test function of this package
}

// every describes what every row's test checks besides its own outcome.
const every = "Unless a row says otherwise, a push of 300 keys (a first round that creates every key, then a round of " +
	"updates, creates and deletes), with a file state store and an audit recorder, meets the fault " +
	"before its k-th write with no other write in flight. The code under test has a 2 s client " +
	"timeout and one retry. Every test checks that nothing is lost and nothing is deleted that " +
	"should not be, that no false conflict is flagged, that Run's error and the status record say " +
	"what happened (a round with failed keys never returns nil and is never recorded as " +
	"\"succeeded\"; the status message is one line), that every write that reached Vault has its " +
	"line in the report and its audit event (in its round, or, when its answer was lost, in the next " +
	"round, which confirms it), and that once the fault is lifted the next round " +
	"converges without writing again what Vault already holds, and the one after writes nothing and " +
	"reports every key unchanged."

// matrix is the fault matrix. docs/faults.md shows it; TestMatrixDoc keeps
// the two in step.
var matrix = []row{
	{
		Fault:   "Vault restarts mid-round",
		Does:    "Stops the Vault container (raft storage) before the k-th write; starts and unseals it while the round goes on. Both layouts.",
		Outcome: "The round stops with an error matching `destination.ErrUnavailable` and status `failed`; writes made before the stop are kept, audited and reported; the data survives the restart; the next round converges without a conflict.",
		Test:    "TestRestartMidRound",
	},
	{
		Fault:   "Vault sealed mid-round",
		Does:    "Seals Vault before the k-th write; unseals it after the round. Both layouts.",
		Outcome: "The round stops with an error matching `destination.ErrUnavailable` (sealed) and status `failed`, instead of trying every other key; the next round after the unseal converges.",
		Test:    "TestSealMidRound",
	},
	{
		Fault:   "Vault frozen past the client timeout",
		Does:    "Freezes the connections to Vault (a loopback proxy that holds every byte, as SIGSTOP would) before the k-th write; thaws them after the round, delivering what was held (Vault drops the requests whose client gave up, as after SIGCONT). Both layouts.",
		Outcome: "The round ends within 15 client timeouts with an error matching `destination.ErrUnavailable` and status `failed`: a timeout is a failure, never \"succeeded\"; the next round converges.",
		Test:    "TestFrozenServer",
	},
	{
		Fault:   "Vault's answers lost past the client timeout",
		Does:    "Holds every answer from Vault before the k-th write, while requests still reach it and are applied; releases them after the round. Both layouts.",
		Outcome: "The round stops with an error matching `destination.ErrUnavailable` and status `failed`; each write that Vault applied without the sync hearing back is reported as failed or unconfirmed (never \"not attempted\") and audited, by its round or by the next one, which takes it for the sync's own: no conflict, not written again.",
		Test:    "TestLostResponses",
	},
	{
		Fault:   "Rate limited (429)",
		Does:    "Sets a rate-limit quota on the mount (one request an hour, used up) before the k-th write; removes it after the round. Both layouts.",
		Outcome: "After its retries, the round stops with an error matching `destination.ErrUnavailable` and status `failed`; the next round converges.",
		Test:    "TestRateLimited",
	},
	{
		Fault:   "Token revoked mid-round (token auth)",
		Does:    "Revokes the sync's token (read from a file) before the k-th write; writes a new token into the file after the round. Both layouts.",
		Outcome: "The round fails with an error, and a status message, that say the token was revoked or expired (not that a policy lacks a capability); the next round picks up the new token and converges.",
		Test:    "TestTokenRevoked",
	},
	{
		Fault:   "Token revoked mid-round (AppRole)",
		Does:    "Revokes every token of the sync's AppRole role before the k-th write, with 4 writes in flight after it. Both layouts.",
		Outcome: "Transparent: exactly one new login, shared by every request in flight, and the round succeeds.",
		Test:    "TestAppRoleTokenRevoked",
	},
	{
		Fault:   "Another writer on the same secrets",
		Does:    "In an update round, another client writes Vault before the k-th write: 5 keys the round has written, 5 it has not reached, and 1 new key. Both layouts.",
		Outcome: "Never overwritten: keys changed under the round are retried, not failed; the next round flags every key the other writer changed (status `conflicts`) and writes the rest; resolving them keeps the other writer's values. In the secret-path layout, whose one write of the secret is refused whole, the round reads the secret again and flags them itself.",
		Test:    "TestConcurrentWriter",
	},
	{
		Fault:   "Two processes on one state file",
		Does:    "Mid-round, a second process opens the same state file; after the first process closes it, the second runs the sync.",
		Outcome: "The second process is refused with `state.ErrLocked` and the first one's round goes on; once the first has let go, the second sees its state and has nothing to do.",
		Test:    "TestTwoProcessesOneStateFile",
	},
	{
		Fault: "The process dies at any step of a round",
		Does: "220 rounds per case (push in both layouts, bidirectional with secret-key), 30 keys changing at random between rounds, each round a new process over the same state file and Vault; in most rounds the process dies at a random fault point: before or after each state save (the round's start, its intents, its end), or after any write to Vault. " +
			"From then on nothing it does takes effect, as after SIGKILL.",
		Outcome: "No round ever flags a conflict (nobody else writes); every round that completes leaves Vault holding exactly the host's values, the round after it writes nothing, and the status is `succeeded`. A write made just before a death is taken for the sync's own by the next round, and audited by it.",
		Test:    "TestCrashAtEveryStepAgainstVault",
	},
	{
		Fault:   "The process is killed with SIGKILL",
		Does:    "Twelve lives of a real `syncd`-like process pushing a 300-key dotenv file to Vault (secret-key layout, file state store), each killed with SIGKILL after a random number of its writes (or while listing, or between rounds); 120 keys of the file change between lives.",
		Outcome: "No process ever flags a conflict; after the last kill, one round converges (Vault holds exactly the file's values, no conflict) and the round after it writes nothing.",
		Test:    "TestSigkillMidRound",
	},
	{
		Fault:   "The state file's disk fills up mid-round",
		Does:    "Fills the file system of the state file (a 2 MiB tmpfs; a file size limit where the test may not mount one) before the k-th write; frees it after the round. Both layouts.",
		Outcome: "The round's writes to Vault are audited and reported, and Run fails with an error that says the state could not be saved and why (`ENOSPC`); the status record never says `succeeded`. Once there is space, the next round takes the writes that landed for its own (no conflict, not written again) and converges.",
		Test:    "TestDiskFullMidRound",
	},
	{
		Fault:   "The state file's directory becomes read-only mid-round",
		Does:    "Remounts the state file's tmpfs read-only (or, without the right to mount, removes the directory's write permission) before the k-th write; makes it writable after the round. Both layouts.",
		Outcome: "As for a full disk: Run fails saying the state could not be saved (`EROFS`), nothing is lost, and the next round converges without a conflict or a second write.",
		Test:    "TestReadOnlyStateDirMidRound",
	},
}

// Markers around the generated table in docs/faults.md.
const (
	beginMark = "<!-- BEGIN FAULT MATRIX: generated from faults/matrix_test.go; go test ./faults -run TestMatrixDoc -update -->"
	endMark   = "<!-- END FAULT MATRIX -->"
	docPath   = "../docs/faults.md"
)

var update = flag.Bool("update", false, "rewrite the fault matrix in docs/faults.md")

// renderMatrix renders the matrix as markdown; files maps each test to the
// file that holds it.
func renderMatrix(rows []row, files map[string]string) string {
	var b strings.Builder
	b.WriteString(every + "\n\n")
	b.WriteString("| Fault | What the test does | Outcome promised | Test |\n")
	b.WriteString("|---|---|---|---|\n")
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | [`%s`](../faults/%s) |\n", cell(r.Fault), cell(r.Does), cell(r.Outcome), r.Test, files[r.Test])
	}
	return b.String()
}

// TestMatrixDoc checks that docs/faults.md shows the matrix as declared,
// and that every row names a test of this package.
func TestMatrixDoc(t *testing.T) {
	tests := testNames(t)
	seen := map[string]bool{}
	for _, r := range matrix {
		if tests[r.Test] == "" {
			t.Errorf("row %q names %s, which is not a test of package faults", r.Fault, r.Test)
		}
		if seen[r.Fault] {
			t.Errorf("row %q appears twice", r.Fault)
		}
		seen[r.Fault] = true
		if r.Fault == "" || r.Does == "" || r.Outcome == "" {
			t.Errorf("row %+v has an empty cell", r)
		}
	}

	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	i, j := bytes.Index(doc, []byte(beginMark)), bytes.Index(doc, []byte(endMark))
	if i < 0 || j < i {
		t.Fatalf("%s lacks the markers %q and %q around the matrix", docPath, beginMark, endMark)
	}
	start := i + len(beginMark)
	got := strings.TrimSpace(string(doc[start:j]))
	want := strings.TrimSpace(renderMatrix(matrix, tests))
	if got == want {
		return
	}
	if *update {
		out := append([]byte{}, doc[:start]...)
		out = append(out, "\n"+want+"\n"...)
		out = append(out, doc[j:]...)
		if err := os.WriteFile(docPath, out, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote the matrix in %s", docPath)
		return
	}
	t.Errorf("%s does not show the matrix declared in matrix_test.go; run go test ./faults -run TestMatrixDoc -update\n--- in the file:\n%s\n--- declared:\n%s", docPath, got, want)
}

// testNames returns the Test functions of this package, each with the file
// that holds it.
func testNames(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	fset := token.NewFileSet()
	for _, f := range files {
		af, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range af.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if ok && fd.Recv == nil && strings.HasPrefix(fd.Name.Name, "Test") && fd.Name.Name != "TestMain" {
				names[fd.Name.Name] = f
			}
		}
	}
	return names
}
