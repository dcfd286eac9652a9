package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is the daemon's version. A release build sets it with
// -ldflags "-X main.version=v1.2.3"; otherwise it is the module version
// that the Go toolchain recorded ("(devel)" for a build from a work tree).
var version = ""

// buildInfo is what -version prints and secretsync_build_info exports.
type buildInfo struct {
	Version   string // "(devel)" when unknown
	Revision  string // VCS commit, "" when unknown
	Time      string // commit time, RFC 3339, "" when unknown
	Modified  bool   // the work tree had changes
	GoVersion string
}

// readBuildInfo returns the version of this binary, with the VCS commit
// when the toolchain recorded it (go build without -buildvcs=false, in a
// git work tree).
func readBuildInfo() buildInfo {
	bi := buildInfo{Version: version, GoVersion: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		if bi.Version == "" {
			bi.Version = "(devel)"
		}
		return bi
	}
	if bi.Version == "" {
		bi.Version = info.Main.Version
	}
	if bi.Version == "" {
		bi.Version = "(devel)"
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			bi.Revision = s.Value
		case "vcs.time":
			bi.Time = s.Value
		case "vcs.modified":
			bi.Modified = s.Value == "true"
		}
	}
	return bi
}

// write prints the build information, as -version does:
//
//	syncd v1.2.3
//	commit 0123abcd… (2025-01-02T03:04:05Z, modified)
//	go1.26.0
func (bi buildInfo) write(w io.Writer) {
	fmt.Fprintf(w, "syncd %s\n", bi.Version)
	switch {
	case bi.Revision == "":
		fmt.Fprintln(w, "commit unknown")
	default:
		fmt.Fprintf(w, "commit %s", bi.Revision)
		switch {
		case bi.Time != "" && bi.Modified:
			fmt.Fprintf(w, " (%s, modified)", bi.Time)
		case bi.Time != "":
			fmt.Fprintf(w, " (%s)", bi.Time)
		case bi.Modified:
			fmt.Fprint(w, " (modified)")
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, bi.GoVersion)
}
