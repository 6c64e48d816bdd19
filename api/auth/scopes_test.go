package auth

import (
	"fmt"
	"testing"
)

// TestScopeReferenceVectors checks every reference vector of docs/rpc.md
// §4.6 (grant list, required scope, method -> result).
func TestScopeReferenceVectors(t *testing.T) {
	tests := []struct {
		grants   []string
		required string
		method   string
		want     bool
	}{
		{[]string{" * "}, ScopeRunAdmin, "hijackRun", true},
		{[]string{"run:write"}, ScopeRunRead, "getRun", true},
		{[]string{"run:read"}, ScopeRunWrite, "launchRun", false},
		{[]string{"read"}, ScopeObservabilityRead, "streamDevTools", true},
		{[]string{"execute"}, ScopeRunWrite, "runs.create", true},
		{[]string{"approve"}, ScopeApprovalSubmit, "submitApproval", true},
		{[]string{"approve"}, ScopeRunWrite, "launchRun", true},
		{[]string{"approve"}, ScopeCronWrite, "cronCreate", true},
		{[]string{"approve"}, ScopeSignalSubmit, "submitSignal", true},
		{[]string{"approve"}, ScopeRunAdmin, "hijackRun", false},
		{[]string{"admin"}, ScopeRunAdmin, "hijackRun", true},
		{[]string{"approval:submit"}, ScopeRunRead, "getRun", false},
		{[]string{"cron:write"}, ScopeCronRead, "cronList", true},
		{[]string{"cron:read"}, ScopeCronWrite, "cronCreate", false},
		{[]string{"runs.*"}, ScopeRunWrite, "runs.create", true},
		{[]string{"runs.*"}, ScopeRunRead, "runs.get", true},
		{[]string{"runs.*"}, ScopeCronWrite, "cron.add", false},
		{[]string{"runs.*"}, ScopeRunAdmin, "runs.get", false},
		{[]string{"cron.*"}, ScopeCronWrite, "cron.add", true},
		{[]string{"getRun"}, ScopeRunRead, "getRun", true},
		{[]string{"getRun"}, ScopeRunWrite, "getRun", false},
		{[]string{"getRun"}, ScopeRunAdmin, "getRun", false},
		{[]string{"unknown"}, ScopeRunRead, "getRun", false},
		{[]string{"mysteryMethod"}, ScopeRunRead, "mysteryMethod", false},
		{[]string{"run:admin"}, ScopeObservabilityRead, "streamDevTools", false},
		{[]string{"run:admin"}, ScopeApprovalSubmit, "submitApproval", false},
		{[]string{"run:admin"}, ScopeSignalSubmit, "submitSignal", false},
		{[]string{"run:admin"}, ScopeCronRead, "cronList", false},
		{[]string{"run:admin"}, ScopeRunRead, "getRun", true},
		{[]string{}, ScopeApprovalSubmit, "submitApproval", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q/%s/%s", tt.grants, tt.required, tt.method), func(t *testing.T) {
			if got := grantsAllow(tt.grants, tt.required, tt.method); got != tt.want {
				t.Fatalf("grantsAllow = %v, want %v", got, tt.want)
			}
			// Where the vector's required scope is the method's own, the
			// public entry point must agree.
			if RequiredScope(tt.method) == tt.required {
				if got := HasScope(tt.grants, tt.method); got != tt.want {
					t.Fatalf("HasScope = %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestHasScope(t *testing.T) {
	tests := []struct {
		name   string
		grants []string
		method string
		want   bool
	}{
		{"nil grants", nil, "getRun", false},
		{"empty and blank grants", []string{"", "  ", "\t"}, "getRun", false},
		{"trimmed typed scope", []string{"  run:read\t"}, "getRun", true},
		{"trimmed star", []string{"\n*\n"}, "cronCreate", true},
		{"star with spaces inside is not star", []string{"* *"}, "getRun", false},
		{"method grant is case-sensitive", []string{"GetRun"}, "getRun", false},
		{"method grant covers only its method", []string{"getRun"}, "listRuns", false},
		{"alias grant covers the alias", []string{"runs.get"}, "runs.get", true},
		{"alias grant does not cover the canonical name", []string{"runs.get"}, "getRun", false},
		{"special name grant", []string{"approvals.list"}, "approvals.list", true},
		{"special name grant health", []string{"health"}, "health", true},
		{"special name getDevToolsSnapshot", []string{"getDevToolsSnapshot"}, "getDevToolsSnapshot", true},
		{"prefix grant covers legacy-only names", []string{"runs.*"}, "runs.rerun", true},
		{"prefix grant covers runs.diff", []string{"runs.*"}, "runs.diff", true},
		{"prefix grant never covers camelCase", []string{"runs.*"}, "launchRun", false},
		{"prefix grant never covers another prefix", []string{"cron.*"}, "runs.get", false},
		{"prefix grant covers its own admin method", []string{"devtools.*"}, "devtools.jumpToFrame", true},
		{"prefix grant needs a dot", []string{"runs*"}, "runs.get", false},
		{"prefix grant on unknown method", []string{"runs.*"}, "runs.mystery", false},
		{"config prefix grant grants nothing", []string{"config.*"}, "config.get", false},
		{"config needs run:admin", []string{"run:write"}, "config.get", false},
		{"config with run:admin", []string{"run:admin"}, "config.get", true},
		{"unknown method needs run:read", []string{"run:read"}, "mysteryMethod", true},
		{"unknown method without run:read", []string{"cron:read"}, "mysteryMethod", false},
		{"run:admin implies run:write", []string{"run:admin"}, "launchRun", true},
		{"run:write does not imply run:admin", []string{"run:write"}, "rewindRun", false},
		{"cron:write does not imply run:read", []string{"cron:write"}, "getRun", false},
		{"observability scope", []string{"observability:read"}, "getDevToolsSnapshot", true},
		{"read does not give run:write", []string{"read"}, "launchRun", false},
		{"execute gives cron:write", []string{"execute"}, "cron.trigger", true},
		{"execute does not give approval:submit", []string{"execute"}, "submitApproval", false},
		{"execute does not give observability", []string{"execute"}, "streamDevTools", false},
		{"approve does not give observability", []string{"approve"}, "streamDevTools", false},
		{"admin gives everything", []string{"admin"}, "streamDevTools", true},
		{"approval:read is not a scope", []string{"approval:read"}, "listApprovals", false},
		{"one good grant among bad ones", []string{"nope", "", "cron:read"}, "cron.list", true},
		{"connect needs no scope", nil, MethodConnect, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HasScope(tt.grants, tt.method); got != tt.want {
				t.Fatalf("HasScope(%q, %q) = %v, want %v", tt.grants, tt.method, got, tt.want)
			}
		})
	}
}

// TestNoEscalation checks that method-name and prefix grants never satisfy
// more than the matched method's own scope, for every registry name.
func TestNoEscalation(t *testing.T) {
	all := []string{ScopeRunRead, ScopeRunWrite, ScopeRunAdmin, ScopeApprovalSubmit,
		ScopeSignalSubmit, ScopeCronRead, ScopeCronWrite, ScopeObservabilityRead}
	for name, own := range methodScopes {
		if name == "approve" {
			continue // also a ranked legacy grant
		}
		for _, need := range all {
			want := scopeImplies(own, need)
			if got := grantsAllow([]string{name}, need, name); got != want {
				t.Errorf("grant %q for %q needing %s = %v, want %v", name, name, need, got, want)
			}
		}
	}
}

func TestRequiredScopeTable(t *testing.T) {
	// docs/rpc.md, written out independently of methodScopes.
	table := map[string]string{
		"launchRun": "run:write", "runs.create": "run:write", "resumeRun": "run:write",
		"cancelRun": "run:write", "runs.cancel": "run:write", "hijackRun": "run:admin",
		"rewindRun": "run:admin", "jumpToFrame": "run:admin", "devtools.jumpToFrame": "run:admin",
		"submitApproval": "approval:submit", "approvals.decide": "approval:submit",
		"submitSignal": "signal:submit", "signals.send": "signal:submit",
		"getRun": "run:read", "runs.get": "run:read", "listRuns": "run:read", "runs.list": "run:read",
		"listWorkflows": "run:read", "workflows.list": "run:read", "listApprovals": "run:read",
		"approvals.list": "run:read", "streamRunEvents": "run:read",
		"streamDevTools": "observability:read", "getNodeOutput": "run:read",
		"devtools.getNodeOutput": "run:read", "getNodeDiff": "run:read",
		"devtools.getNodeDiff": "run:read", "cronList": "cron:read", "cron.list": "cron:read",
		"cronCreate": "cron:write", "cron.add": "cron:write", "cronDelete": "cron:write",
		"cron.remove": "cron:write", "cronRun": "cron:write", "cron.trigger": "cron:write",
		"health": "run:read", "runs.rerun": "run:write", "runs.diff": "run:read",
		"frames.list": "run:read", "frames.get": "run:read", "attempts.list": "run:read",
		"attempts.get": "run:read", "getDevToolsSnapshot": "observability:read",
		"approve": "approval:submit",
	}
	for name, want := range table {
		if got, ok := MethodScope(name); !ok || got != want {
			t.Errorf("MethodScope(%q) = %q, %v; want %q", name, got, ok, want)
		}
		if got := RequiredScope(name); got != want {
			t.Errorf("RequiredScope(%q) = %q, want %q", name, got, want)
		}
	}
	if len(methodScopes) != len(table) {
		t.Errorf("registry has %d names, contract table %d", len(methodScopes), len(table))
	}
	others := map[string]string{
		"run:admin": "run:admin", "cron:read": "cron:read", "observability:read": "observability:read",
		"config.get": "run:admin", "config.": "run:admin", "mysteryMethod": "run:read",
		"GetRun": "run:read", "": "run:read", "connect": "",
	}
	for name, want := range others {
		if got := RequiredScope(name); got != want {
			t.Errorf("RequiredScope(%q) = %q, want %q", name, got, want)
		}
		if _, ok := MethodScope(name); ok {
			t.Errorf("MethodScope(%q) reported a registry scope", name)
		}
	}
}

func TestApprovalScopesSatisfied(t *testing.T) {
	tests := []struct {
		name    string
		grants  []string
		allowed []string
		want    bool
	}{
		{"no restriction", nil, nil, true},
		{"empty restriction", nil, []string{}, true},
		{"typed scope requires itself", []string{"approval:submit"}, []string{"approval:submit"}, true},
		{"typed scope missing", []string{"run:read"}, []string{"cron:write"}, false},
		{"hierarchy applies", []string{"run:admin"}, []string{"run:write"}, true},
		{"approve requires approval:submit", []string{"run:read"}, []string{"approve"}, false},
		{"approve satisfied", []string{"approval:submit"}, []string{"approve"}, true},
		{"admin quirk: any run:read satisfies", []string{"run:read"}, []string{"admin"}, true},
		{"read quirk", []string{"run:write"}, []string{"read"}, true},
		{"execute needs run:read only", []string{"approval:submit"}, []string{"execute"}, false},
		{"one of several", []string{"cron:read"}, []string{"run:admin", "cron:read"}, true},
		{"method name entry", []string{"getRun"}, []string{"getRun"}, true},
		{"connect entry resolves to run:read", []string{"approval:submit"}, []string{"connect"}, false},
		{"no grants", nil, []string{"approve"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ApprovalScopesSatisfied(tt.grants, tt.allowed); got != tt.want {
				t.Fatalf("ApprovalScopesSatisfied(%q, %q) = %v, want %v", tt.grants, tt.allowed, got, tt.want)
			}
		})
	}
}
