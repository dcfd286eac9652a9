package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// unitFile is a systemd unit file: for each section, each key's values in
// order (a key may be given more than once).
type unitFile map[string]map[string][]string

// parseUnit reads a unit file. It knows what syncd.service uses: sections,
// key=value lines and comments; a line continuation is refused.
func parseUnit(t *testing.T, path string) unitFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
			continue
		case strings.HasSuffix(line, `\`):
			t.Fatalf("%s:%d: a line continuation; keep each setting on one line", path, n)
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			t.Fatalf("%s:%d: not a key=value line in a section: %q", path, n, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		u[section][k] = append(u[section][k], v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// one returns the single value of key in section, failing when it is
// missing or given more than once.
func (u unitFile) one(t *testing.T, section, key string) string {
	t.Helper()
	v := u[section][key]
	if len(v) != 1 {
		t.Fatalf("[%s] %s: %d values %q, want one", section, key, len(v), v)
	}
	return v[0]
}

// syncdFlags returns the flags of syncd's daemon mode, from its -h
// output, each with whether it takes a value ("-config file") or not
// ("-check", a boolean).
func syncdFlags(t *testing.T) map[string]bool {
	t.Helper()
	code, _, usage := runNoPanic(t, context.Background(), "-h")
	if code != exitOK {
		t.Fatalf("-h = %d", code)
	}
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z][a-z-]*)( \S+)?$`).FindAllStringSubmatch(usage, -1) {
		flags[m[1]] = m[2] != ""
	}
	if !flags["config"] || flags["check"] {
		t.Fatalf("flags %v from -h: the listing is wrong\n%s", flags, usage)
	}
	return flags
}

// checkCommand checks a command line of the unit that runs syncd: its
// binary, every flag one of syncd's, and its -config file; it returns the
// flags given.
func checkCommand(t *testing.T, what, line string, flags map[string]bool) map[string]string {
	t.Helper()
	args := strings.Fields(line)
	if len(args) == 0 || args[0] != guideBinary {
		t.Fatalf("%s = %q: want %s", what, line, guideBinary)
	}
	got := map[string]string{}
	for i := 1; i < len(args); i++ {
		name, ok := strings.CutPrefix(args[i], "-")
		name = strings.TrimPrefix(name, "-")
		if !ok {
			t.Errorf("%s: argument %q is not a flag", what, args[i])
			continue
		}
		name, val, hasVal := strings.Cut(name, "=")
		takesValue, ok := flags[name]
		if !ok {
			t.Errorf("%s: -%s is not a flag of syncd (%v)", what, name, flags)
			continue
		}
		if takesValue && !hasVal {
			if i+1 >= len(args) {
				t.Errorf("%s: -%s without its value", what, name)
				continue
			}
			i++
			val = args[i]
		}
		got[name] = val
	}
	if got["config"] != guideConfig {
		t.Errorf("%s: -config %q, want %s", what, got["config"], guideConfig)
	}
	return got
}

// The paths that the unit, the image and the guide share.
const (
	guideBinary   = "/usr/local/bin/syncd"
	guideConfig   = "/etc/syncd/syncd.hcl"
	guideStateDir = "/var/lib/syncd"
	guideLogsDir  = "/var/log/syncd"
)

// TestSystemdUnit checks syncd.service: every flag it passes exists, its
// paths agree with the directories systemd makes and with the operations
// guide, reload sends SIGHUP, restarts skip exit status 2 and are bounded,
// and the sandbox is on. With systemd-analyze installed, it also verifies
// the unit and bounds its exposure score.
func TestSystemdUnit(t *testing.T) {
	u := parseUnit(t, "syncd.service")
	flags := syncdFlags(t)
	svc := "Service"

	checkCommand(t, "ExecStart", u.one(t, svc, "ExecStart"), flags)
	reload := u[svc]["ExecReload"]
	if len(reload) != 2 || reload[1] != "/bin/kill -HUP $MAINPID" {
		t.Fatalf("ExecReload = %q: want a -check, then /bin/kill -HUP $MAINPID", reload)
	}
	got := checkCommand(t, "ExecReload", reload[0], flags)
	if _, ok := got["check"]; !ok || len(got) != 2 {
		t.Errorf("ExecReload %q: want syncd -check -config %s", reload[0], guideConfig)
	}

	// The directories systemd makes are the ones syncd is told to use.
	if d := "/etc/" + u.one(t, svc, "ConfigurationDirectory"); filepath.Dir(guideConfig) != d {
		t.Errorf("ConfigurationDirectory is %s; the configuration is %s", d, guideConfig)
	}
	if d := "/var/lib/" + u.one(t, svc, "StateDirectory"); d != guideStateDir || u.one(t, svc, "WorkingDirectory") != d {
		t.Errorf("StateDirectory %s, WorkingDirectory %s; want %s", d, u.one(t, svc, "WorkingDirectory"), guideStateDir)
	}
	if d := "/var/log/" + u.one(t, svc, "LogsDirectory"); d != guideLogsDir {
		t.Errorf("LogsDirectory %s, want %s", d, guideLogsDir)
	}

	// Restarts: never for exit status 2 (the file does not validate, a
	// bad flag), never for 0, and bounded by the start limit.
	if got := u.one(t, svc, "Restart"); got != "on-failure" {
		t.Errorf("Restart=%s, want on-failure", got)
	}
	prevent := map[int]bool{}
	for _, f := range strings.Fields(u.one(t, svc, "RestartPreventExitStatus")) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("RestartPreventExitStatus: %q: %v", f, err)
		}
		prevent[n] = true
	}
	if !prevent[exitUsage] || prevent[exitOK] || prevent[exitConflicts] {
		t.Errorf("RestartPreventExitStatus=%v: want %d (usage, a file that does not validate) in, and neither 0 nor 3", prevent, exitUsage)
	}
	interval := parseSpan(t, u.one(t, "Unit", "StartLimitIntervalSec"))
	burst, err := strconv.Atoi(u.one(t, "Unit", "StartLimitBurst"))
	if err != nil {
		t.Fatal(err)
	}
	if restartSec := parseSpan(t, u.one(t, svc, "RestartSec")); time.Duration(burst)*restartSec >= interval {
		t.Errorf("%d restarts %v apart never reach the start limit of %d in %v: a configuration that cannot be built would restart forever", burst, restartSec, burst, interval)
	}

	// The sandbox.
	for k, want := range map[string]string{
		"DynamicUser": "yes", "NoNewPrivileges": "yes", "CapabilityBoundingSet": "", "AmbientCapabilities": "",
		"ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
		"RestrictSUIDSGID": "yes", "UMask": "0077", "StateDirectoryMode": "0700", "LogsDirectoryMode": "0700",
	} {
		if got := u[svc][k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}

	// The guide names the same paths.
	guide, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{guideBinary, guideConfig, guideStateDir, guideLogsDir, "examples/syncd/syncd.service",
		"systemctl reload syncd", "RestartPreventExitStatus"} {
		if !strings.Contains(string(guide), p) {
			t.Errorf("docs/operations.md does not mention %s", p)
		}
	}

	systemdAnalyze(t)
}

// systemdAnalyze runs systemd-analyze verify and security --offline on
// the unit, when systemd-analyze is installed; the binary is stood in for
// by this test's executable.
func systemdAnalyze(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze is not installed: the unit is not verified by systemd")
		return
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	unit, err := os.ReadFile("syncd.service")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "syncd.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), guideBinary, self)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sa, "verify", path).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// The exposure score, 0 (sandboxed) to 10 (unprotected); the threshold
	// is in tenths.
	out, err := exec.Command(sa, "security", "--offline=true", "--threshold=20", path).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for syncd.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	t.Logf("systemd-analyze security: exposure %s", m[1])
	if err != nil {
		t.Errorf("systemd-analyze security: exposure %s is above 2.0: %v", m[1], err)
	}
}

// parseSpan parses a systemd time span of one unit: "30s", "15min".
func parseSpan(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(strings.Replace(s, "min", "m", 1))
	if err != nil {
		t.Fatalf("time span %q: %v", s, err)
	}
	return d
}
