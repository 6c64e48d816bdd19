package auth

import "strings"

// The eight typed scopes of docs/rpc.md.
const (
	ScopeRunRead           = "run:read"
	ScopeRunWrite          = "run:write"
	ScopeRunAdmin          = "run:admin"
	ScopeApprovalSubmit    = "approval:submit"
	ScopeSignalSubmit      = "signal:submit"
	ScopeCronRead          = "cron:read"
	ScopeCronWrite         = "cron:write"
	ScopeObservabilityRead = "observability:read"
)

// MethodConnect is the WebSocket handshake method; it needs no scope.
const MethodConnect = "connect"

// methodScopes is the registry of docs/rpc.md: every canonical v1
// method, every legacy alias and every special name that has a registry
// scope. It is read-only.
var methodScopes = map[string]string{
	// Canonical v1 methods and their legacy aliases.
	"launchRun":              ScopeRunWrite,
	"runs.create":            ScopeRunWrite,
	"resumeRun":              ScopeRunWrite,
	"cancelRun":              ScopeRunWrite,
	"runs.cancel":            ScopeRunWrite,
	"hijackRun":              ScopeRunAdmin,
	"rewindRun":              ScopeRunAdmin,
	"jumpToFrame":            ScopeRunAdmin,
	"devtools.jumpToFrame":   ScopeRunAdmin,
	"submitApproval":         ScopeApprovalSubmit,
	"approvals.decide":       ScopeApprovalSubmit,
	"submitSignal":           ScopeSignalSubmit,
	"signals.send":           ScopeSignalSubmit,
	"getRun":                 ScopeRunRead,
	"runs.get":               ScopeRunRead,
	"listRuns":               ScopeRunRead,
	"runs.list":              ScopeRunRead,
	"listWorkflows":          ScopeRunRead,
	"workflows.list":         ScopeRunRead,
	"listApprovals":          ScopeRunRead,
	"approvals.list":         ScopeRunRead,
	"streamRunEvents":        ScopeRunRead,
	"streamDevTools":         ScopeObservabilityRead,
	"getNodeOutput":          ScopeRunRead,
	"devtools.getNodeOutput": ScopeRunRead,
	"getNodeDiff":            ScopeRunRead,
	"devtools.getNodeDiff":   ScopeRunRead,
	"cronList":               ScopeCronRead,
	"cron.list":              ScopeCronRead,
	"cronCreate":             ScopeCronWrite,
	"cron.add":               ScopeCronWrite,
	"cronDelete":             ScopeCronWrite,
	"cron.remove":            ScopeCronWrite,
	"cronRun":                ScopeCronWrite,
	"cron.trigger":           ScopeCronWrite,
	// Special names (utility and legacy-only methods).
	"health":              ScopeRunRead,
	"runs.diff":           ScopeRunRead,
	"frames.list":         ScopeRunRead,
	"frames.get":          ScopeRunRead,
	"attempts.list":       ScopeRunRead,
	"attempts.get":        ScopeRunRead,
	"getDevToolsSnapshot": ScopeObservabilityRead,
	"runs.rerun":          ScopeRunWrite,
	"approve":             ScopeApprovalSubmit,
}

// legacyGrants maps the ranked legacy grants of docs/rpc.md (scopes, rule 5) to
// the typed scopes they imply. "admin" implies everything and is handled
// apart. It is read-only.
var legacyGrants = map[string][]string{
	"read": {ScopeRunRead, ScopeCronRead, ScopeObservabilityRead},
	"execute": {ScopeRunRead, ScopeRunWrite, ScopeSignalSubmit,
		ScopeCronRead, ScopeCronWrite},
	"approve": {ScopeApprovalSubmit, ScopeRunRead, ScopeRunWrite,
		ScopeSignalSubmit, ScopeCronRead, ScopeCronWrite},
}

// MethodScope reports the registry scope of a method name: the scope of a
// canonical v1 method, of a legacy alias, or of one of the special names
// (health, approvals.list, runs.rerun, approve ...). ok is false for any
// other name, including "connect", the typed scopes themselves and unknown
// methods. Names are case-sensitive.
func MethodScope(name string) (scope string, ok bool) {
	scope, ok = methodScopes[name]
	return scope, ok
}

// IsTypedScope reports whether s is one of the eight typed scopes.
func IsTypedScope(s string) bool {
	switch s {
	case ScopeRunRead, ScopeRunWrite, ScopeRunAdmin, ScopeApprovalSubmit,
		ScopeSignalSubmit, ScopeCronRead, ScopeCronWrite, ScopeObservabilityRead:
		return true
	}
	return false
}

// RequiredScope returns the scope the scope gate demands for method, by the
// resolution of docs/rpc.md: a typed scope requires itself, "config.*"
// requires run:admin, registry names require their registry scope, and any
// other (unknown) method requires run:read. It returns "" for "connect",
// the WebSocket handshake, which every authenticated caller may send.
func RequiredScope(method string) string {
	if method == MethodConnect {
		return ""
	}
	return resolveScope(method)
}

// resolveScope is the §2.3 resolution without the handshake exception; an
// approval's allowedScopes entries are resolved with it, so "connect" there
// means run:read as upstream.
func resolveScope(method string) string {
	if IsTypedScope(method) {
		return method
	}
	if strings.HasPrefix(method, "config.") {
		return ScopeRunAdmin
	}
	if s, ok := methodScopes[method]; ok {
		return s
	}
	return ScopeRunRead
}

// HasScope reports whether grants authorise a call of method, whose required
// scope is RequiredScope(method) (docs/rpc.md). Grants are trimmed and
// empty ones ignored; "*", method-name grants, "<prefix>.*" grants, typed
// scopes with their hierarchy and the legacy ranked grants are honoured, and
// a method-name or prefix grant never authorises more than the matched
// method's own scope.
func HasScope(grants []string, method string) bool {
	required := RequiredScope(method)
	if required == "" {
		return true
	}
	return grantsAllow(grants, required, method)
}

// ApprovalScopesSatisfied reports whether grants satisfy an approval's
// allowedScopes (docs/rpc.md, scopes): an empty list is
// always satisfied, otherwise at least one entry must be, each entry being
// evaluated as a method name (a typed scope requires itself, "approve"
// requires approval:submit, any other unknown string requires run:read). The
// caller must check approval:submit for the submitting method separately.
func ApprovalScopesSatisfied(grants, allowedScopes []string) bool {
	if len(allowedScopes) == 0 {
		return true
	}
	for _, name := range allowedScopes {
		if grantsAllow(grants, resolveScope(name), name) {
			return true
		}
	}
	return false
}

// grantsAllow is the hasScope(grants, required, method) of §4.6, with the
// required scope given explicitly so the no-escalation rule can be tested.
func grantsAllow(grants []string, required, method string) bool {
	for _, g := range grants {
		g = strings.TrimSpace(g)
		if g != "" && grantAllows(g, required, method) {
			return true
		}
	}
	return false
}

func grantAllows(grant, required, method string) bool {
	if grant == "*" || grant == "admin" {
		return true
	}
	// Rule 2: a method-name grant, limited to that method's own scope.
	if grant == method {
		if own, ok := methodScopes[method]; ok && scopeImplies(own, required) {
			return true
		}
	}
	// Rule 3: "<prefix>.*", limited to the matched method's own scope.
	if prefix, ok := strings.CutSuffix(grant, "*"); ok && strings.HasSuffix(prefix, ".") &&
		strings.HasPrefix(method, prefix) {
		if own, ok := methodScopes[method]; ok && scopeImplies(own, required) {
			return true
		}
	}
	// Rule 4: a typed scope and its hierarchy.
	if IsTypedScope(grant) && scopeImplies(grant, required) {
		return true
	}
	// Rule 5: the ranked legacy grants.
	for _, s := range legacyGrants[grant] {
		if s == required {
			return true
		}
	}
	return false
}

// scopeImplies reports whether holding the typed scope have satisfies need:
// run:admin ⊇ run:write ⊇ run:read, cron:write ⊇ cron:read, every other
// scope only itself.
func scopeImplies(have, need string) bool {
	if have == need {
		return true
	}
	switch have {
	case ScopeRunAdmin:
		return need == ScopeRunWrite || need == ScopeRunRead
	case ScopeRunWrite:
		return need == ScopeRunRead
	case ScopeCronWrite:
		return need == ScopeCronRead
	}
	return false
}
