package host

import "strings"

// WorkflowDef is one workflow registered by the module with
// gateway.register(key, fn, options). The function itself lives in the
// executor; host keeps the key and the validated options.
type WorkflowDef struct {
	Key          string
	ReadableName string
	Description  string
	// Schedule is a cron pattern: at start the gateway keeps cron
	// "gateway:<key>" enabled with it, and fires it on schedule.
	Schedule string
	Webhook  *WebhookConfig
	// MaxConcurrency bounds the concurrently running tasks of one run
	// (0: unbounded).
	MaxConcurrency int
	// TimeoutMs bounds the whole run (0: none); RUN_TIMEOUT when it runs out.
	TimeoutMs int64
	// Env lists the environment variables task bodies may read with t.env.
	Env []string
	// VersionPolicy is "replay" (default) or "strict".
	VersionPolicy string
	// Concurrency, when set, caps the task bodies of the workflow running
	// at once across all its runs (per key value with a key).
	Concurrency *ConcurrencyLimit
}

// WebhookConfig is the webhook option of a workflow: POST
// /webhooks/<key> verifies an HMAC-SHA256 signature with Secret, then
// delivers the body as a signal to waiting runs or starts a run. The
// methods in webhook.go apply the defaults.
type WebhookConfig struct {
	Secret          string
	SignatureHeader string
	// SignaturePrefix is nil when the module gave none (default
	// "sha256="); an explicit "" means the header holds the bare hex.
	SignaturePrefix *string
	// DeliveryHeader names the header carrying the sender's delivery id
	// (default x-github-delivery): a delivery id seen again within
	// WebhookDedupeWindow is answered without delivering again.
	DeliveryHeader string
	Signal         *WebhookSignal
	Run            *WebhookRun
}

// WebhookSignal delivers a webhook as a signal to waiting runs.
type WebhookSignal struct {
	Name              string
	CorrelationIDPath string
	RunIDPath         string
	PayloadPath       string
}

// WebhookRun starts a run from a webhook.
type WebhookRun struct {
	Enabled   *bool
	InputPath string
}

// Version policies.
const (
	VersionReplay = "replay"
	VersionStrict = "strict"
)

// idOf reports whether s is 1 to max bytes, each a letter, a digit or one
// of extra. (A regexp with a {1,128} bound compiles to a program of that
// many steps: milliseconds at start-up, and slower to run than this loop.)
func idOf(s string, max int, lower bool, extra string) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case !lower && 'A' <= c && c <= 'Z':
		case strings.IndexByte(extra, c) >= 0:
		default:
			return false
		}
	}
	return true
}

// ValidWorkflowKey reports whether key may name a workflow:
// ^[A-Za-z0-9._:-]{1,128}$.
func ValidWorkflowKey(key string) bool { return idOf(key, 128, false, "._:-") }

// ValidRunID reports whether id may be given as a run id by a caller:
// ^[a-z0-9_-]{1,64}$.
func ValidRunID(id string) bool { return idOf(id, 64, true, "_-") }

// ValidStepID reports whether id may name a node (ctx.task, ctx.approval
// ...): ^[A-Za-z0-9:_-]{1,128}$.
func ValidStepID(id string) bool { return idOf(id, 128, false, ":_-") }
