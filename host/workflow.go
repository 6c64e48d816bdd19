package host

import "regexp"

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

var (
	workflowKeyPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
	runIDPattern       = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)
	stepIDPattern      = regexp.MustCompile(`^[A-Za-z0-9:_-]{1,128}$`)
)

// ValidWorkflowKey reports whether key may name a workflow.
func ValidWorkflowKey(key string) bool { return workflowKeyPattern.MatchString(key) }

// ValidRunID reports whether id may be given as a run id by a caller.
func ValidRunID(id string) bool { return runIDPattern.MatchString(id) }

// ValidStepID reports whether id may name a node (ctx.task, ctx.approval ...).
func ValidStepID(id string) bool { return stepIDPattern.MatchString(id) }
