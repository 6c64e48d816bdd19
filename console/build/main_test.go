package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/api/auth"
)

// TestCommittedAssetsAreCurrent rebuilds the console in memory and fails
// when the files the gateway embeds differ from what their sources give,
// or when the build is not reproducible.
func TestCommittedAssetsAreCurrent(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	built, err := Build(root)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Build(root)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range built {
		if !bytes.Equal(b, again[name]) {
			t.Errorf("two builds of %s differ: the build is not reproducible", name)
		}
	}
	dir := filepath.Join(root, outDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var committed []string
	for _, e := range entries {
		committed = append(committed, e.Name())
	}
	sort.Strings(committed)
	if want := sortedNames(built); strings.Join(committed, ",") != strings.Join(want, ",") {
		t.Fatalf("%s holds %v, the build gives %v: run go generate ./api and commit the result", outDir, committed, want)
	}
	for _, name := range committed {
		have, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(have, built[name]) {
			t.Errorf("%s/%s is not what console/src builds to: run go generate ./api and commit the result", outDir, name)
		}
	}
}

// TestScopeTable checks the table the client decides with against the
// gateway's own gate: for the reference vectors and for every grant and
// console method, "one trimmed grant is in the table" must equal
// auth.HasScope.
func TestScopeTable(t *testing.T) {
	table := scopeTable()
	clientAllows := func(grants []string, method string) bool {
		for _, g := range grants {
			for _, ok := range table[method].Grants {
				if strings.TrimSpace(g) == ok {
					return true
				}
			}
		}
		return false
	}
	grantSets := [][]string{
		{" * "}, {"admin"}, {"read"}, {"execute"}, {"approve"}, {"run:read"}, {"run:write"}, {"run:admin"},
		{"approval:submit"}, {"signal:submit"}, {"cron:read"}, {"cron:write"}, {"observability:read"},
		{"runs.*"}, {"cron.*"}, {"attempts.*"}, {"getRun"}, {"attempts.list"}, {"unknown"}, {"approval:read"}, {},
		{"run:read", "approval:submit"}, {"  cron:write "}, {"launchRun", "cronList"},
	}
	for _, m := range consoleMethods {
		if _, ok := table[m]; !ok {
			t.Fatalf("%s has no table entry", m)
		}
		if table[m].RequiredScope != auth.RequiredScope(m) {
			t.Errorf("%s: required %q, gate requires %q", m, table[m].RequiredScope, auth.RequiredScope(m))
		}
		for _, g := range grantSets {
			if got, want := clientAllows(g, m), auth.HasScope(g, m); got != want {
				t.Errorf("grants %q, method %s: the console says %v, the gateway %v", g, m, got, want)
			}
		}
	}
	if clientAllows([]string{"run:read"}, "submitApproval") || !clientAllows([]string{"approve"}, "submitApproval") {
		t.Error("submitApproval: run:read must not allow it, approve must")
	}
}

// TestApprovalScopeTable checks the console's judgement of an approval's
// allowedScopes against auth.ApprovalScopesSatisfied, for the entries it
// judges itself.
func TestApprovalScopeTable(t *testing.T) {
	table := approvalScopeTable()
	grantSets := [][]string{{"*"}, {"admin"}, {"read"}, {"execute"}, {"approve"}, {"run:read"}, {"run:admin"},
		{"approval:submit"}, {"cron:write"}, {"observability:read"}, {"getRun"}, {"unknown"}, {}, {" run:write "}}
	for _, name := range approvalScopeNames {
		for _, g := range grantSets {
			got := false
			for _, grant := range g {
				if slices.Contains(table[name], strings.TrimSpace(grant)) {
					got = true
				}
			}
			if want := auth.ApprovalScopesSatisfied(g, []string{name}); got != want {
				t.Errorf("allowedScopes [%s], grants %q: the console says %v, the gateway %v", name, g, got, want)
			}
		}
	}
}
