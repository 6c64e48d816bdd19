package api

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/smithers-orchestrator/smithers-go/api/auth"
	"github.com/smithers-orchestrator/smithers-go/host"
)

// Metrics are the gateway's Prometheus families, with the names and labels
// of docs/operations.md. Every family exists from start-up: the label
// combinations known in advance are initialised at zero.
type Metrics struct {
	reg *prometheus.Registry

	connectionsTotal  *prometheus.CounterVec
	connectionsActive *prometheus.GaugeVec
	connectionsClosed *prometheus.CounterVec
	messagesReceived  *prometheus.CounterVec
	messagesSent      *prometheus.CounterVec
	rpcCalls          *prometheus.CounterVec
	rpcDuration       *prometheus.HistogramVec
	errors            *prometheus.CounterVec
	authEvents        *prometheus.CounterVec
	heartbeatTicks    prometheus.Counter
	runsStarted       *prometheus.CounterVec
	runsCompleted     *prometheus.CounterVec
	approvalDecisions *prometheus.CounterVec
	signals           *prometheus.CounterVec
	cronTriggers      *prometheus.CounterVec
	webhooksReceived  *prometheus.CounterVec
	webhooksVerified  *prometheus.CounterVec
	webhooksRejected  *prometheus.CounterVec
	backpressure      prometheus.Counter
	// tasksWaiting is ours (upstream has no concurrency limits): task
	// attempts waiting for a slot of their workflow's concurrency limit.
	tasksWaiting    *prometheus.GaugeVec
	nodeOutput      *prometheus.CounterVec
	nodeOutputBytes prometheus.Histogram
	nodeOutputMs    prometheus.Histogram
	// nodeOutputSchema counts schema descriptor warnings; getNodeOutput
	// answers schema: null (docs/differences.md), so it stays at zero.
	nodeOutputSchema prometheus.Counter
	eventCounters    sync.Map // event name -> its messages_sent counter
	// methods are the method label values: the names of the method table
	// and connect. Any other name a caller sends is labelled unknownMethod,
	// so that inventing names cannot grow /metrics.
	methods map[string]bool
	// The series every request touches, looked up once (WithLabelValues
	// hashes its labels and takes a lock on every call): per transport
	// (0 http, 1 ws) the requests received and responses sent, and per
	// method and transport the call counter and duration.
	requests  [2]prometheus.Counter
	responses [2][2]prometheus.Counter // [transport][0 ok, 1 error]
	authSeen  [2][2]prometheus.Counter // [transport][0 success, 1 failure], of the configured mode
	authMode  string
	calls     map[rpcSeries]rpcHandles
}

// rpcSeries names one method's series on one transport.
type rpcSeries struct{ method, transport string }

// rpcHandles are the call counter and duration histogram of an rpcSeries.
type rpcHandles struct {
	calls    prometheus.Counter
	duration prometheus.Observer
}

// transportIndex is the index of a transport in the handle arrays.
func transportIndex(transport string) int {
	if transport == "ws" {
		return 1
	}
	return 0
}

// unknownMethod labels the calls of names that are not gateway methods.
const unknownMethod = "unknown"

// unknownWorkflow labels webhooks to keys no workflow is registered under,
// so that posting to invented keys cannot grow /metrics.
const unknownWorkflow = "unknown"

var _ host.Observer = (*Metrics)(nil)

// exponential returns start·2^k for k = 0..n-1 (the upstream bucket sets).
func exponential(start float64, n int) []float64 {
	return prometheus.ExponentialBuckets(start, 2, n)
}

// NewMetrics registers the gateway families (and the Go and process
// collectors) on reg. workflows are the workflow label values to
// initialise; the method label values are the method table's names.
func NewMetrics(reg *prometheus.Registry, workflows []string) *Metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		reg.MustRegister(c)
		return c
	}
	m := &Metrics{reg: reg, methods: map[string]bool{auth.MethodConnect: true}}
	for name := range methodTable() {
		m.methods[name] = true
	}
	m.connectionsTotal = counter("smithers_gateway_connections_total", "Gateway connections opened", "transport")
	m.connectionsActive = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "smithers_gateway_connections_active", Help: "Gateway connections open"}, []string{"transport"})
	reg.MustRegister(m.connectionsActive)
	m.connectionsClosed = counter("smithers_gateway_connections_closed_total", "Gateway connections closed", "transport", "reason")
	m.messagesReceived = counter("smithers_gateway_messages_received_total", "Gateway messages received", "transport", "frameType", "workflow")
	m.messagesSent = counter("smithers_gateway_messages_sent_total", "Gateway messages sent", "transport", "frameType", "outcome", "event", "route", "workflow")
	m.rpcCalls = counter("smithers_gateway_rpc_calls_total", "Gateway RPC calls", "method", "transport")
	m.rpcDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "smithers_gateway_rpc_duration_ms", Help: "Gateway RPC duration",
		Buckets: exponential(100, 12)}, []string{"method", "transport"})
	reg.MustRegister(m.rpcDuration)
	m.errors = counter("smithers_gateway_errors_total", "Gateway errors", "kind", "transport", "method", "code", "workflow")
	m.authEvents = counter("smithers_gateway_auth_events_total", "Gateway authentication attempts", "transport", "mode", "outcome")
	m.heartbeatTicks = prometheus.NewCounter(prometheus.CounterOpts{Name: "smithers_gateway_heartbeat_ticks_total", Help: "Gateway heartbeat ticks"})
	reg.MustRegister(m.heartbeatTicks)
	m.runsStarted = counter("smithers_gateway_runs_started_total", "Gateway runs started", "workflow", "source", "resume")
	m.runsCompleted = counter("smithers_gateway_runs_completed_total", "Gateway runs completed", "workflow", "status")
	m.approvalDecisions = counter("smithers_gateway_approval_decisions_total", "Gateway approval decisions", "outcome")
	m.signals = counter("smithers_gateway_signals_total", "Gateway signals", "outcome")
	m.cronTriggers = counter("smithers_gateway_cron_triggers_total", "Gateway cron triggers", "source")
	m.webhooksReceived = counter("smithers_gateway_webhooks_received_total", "Gateway webhooks received", "workflow")
	m.webhooksVerified = counter("smithers_gateway_webhooks_verified_total", "Gateway webhooks verified", "workflow")
	m.webhooksRejected = counter("smithers_gateway_webhooks_rejected_total", "Gateway webhooks rejected", "workflow", "reason")
	m.backpressure = prometheus.NewCounter(prometheus.CounterOpts{Name: "smithers_gateway_backpressure_disconnect_total", Help: "Sockets closed for falling behind their event stream"})
	reg.MustRegister(m.backpressure)
	m.tasksWaiting = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "smithers_gateway_concurrency_waiting",
		Help: "Task attempts waiting for a slot of their workflow's concurrency limit"}, []string{"workflow"})
	reg.MustRegister(m.tasksWaiting)
	m.nodeOutput = counter("smithers_node_output_request_total", "getNodeOutput requests", "status")
	m.nodeOutputBytes = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "smithers_node_output_bytes", Help: "getNodeOutput: bytes of the stored output served",
		Buckets: exponential(100, 16)})
	m.nodeOutputMs = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "smithers_node_output_duration_ms", Help: "getNodeOutput duration",
		Buckets: exponential(1, 12)})
	m.nodeOutputSchema = prometheus.NewCounter(prometheus.CounterOpts{Name: "smithers_node_output_schema_conversion_error_total", Help: "getNodeOutput schema conversion errors"})
	reg.MustRegister(m.nodeOutputBytes, m.nodeOutputMs, m.nodeOutputSchema)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// Initialise what is known at start-up, so every family is present.
	m.connectionsTotal.WithLabelValues("ws")
	for _, t := range []string{"ws", "http"} {
		m.messagesReceived.WithLabelValues(t, "request", "")
		for _, o := range []string{"ok", "error"} {
			m.messagesSent.WithLabelValues(t, "response", o, "", "", "")
		}
	}
	m.connectionsActive.WithLabelValues("ws")
	for _, r := range []string{"close", "error"} {
		m.connectionsClosed.WithLabelValues("ws", r)
	}
	for _, method := range []string{"launchRun", "getRun", "listRuns", "listWorkflows", "listApprovals", "submitApproval", "submitSignal", "cancelRun", "resumeRun"} {
		for _, t := range []string{"http", "ws"} {
			m.rpcCalls.WithLabelValues(method, t)
			m.rpcDuration.WithLabelValues(method, t)
		}
	}
	for _, method := range []string{"connect", "streamRunEvents"} { // WebSocket only
		m.rpcCalls.WithLabelValues(method, "ws")
		m.rpcDuration.WithLabelValues(method, "ws")
	}
	// Handles of the hot series. A handle's series appears in /metrics
	// once it is looked up, so only series that existed before (above) are
	// taken now; the others are looked up at their first call, as before.
	for i, t := range []string{"http", "ws"} {
		m.requests[i] = m.messagesReceived.WithLabelValues(t, "request", "")
		for j, o := range []string{"ok", "error"} {
			m.responses[i][j] = m.messagesSent.WithLabelValues(t, "response", o, "", "", "")
		}
	}
	m.calls = map[rpcSeries]rpcHandles{}
	for _, method := range []string{"launchRun", "getRun", "listRuns", "listWorkflows", "listApprovals", "submitApproval", "submitSignal", "cancelRun", "resumeRun"} {
		for _, t := range []string{"http", "ws"} {
			m.calls[rpcSeries{method, t}] = rpcHandles{m.rpcCalls.WithLabelValues(method, t), m.rpcDuration.WithLabelValues(method, t)}
		}
	}
	for _, method := range []string{"connect", "streamRunEvents"} {
		m.calls[rpcSeries{method, "ws"}] = rpcHandles{m.rpcCalls.WithLabelValues(method, "ws"), m.rpcDuration.WithLabelValues(method, "ws")}
	}
	m.errors.WithLabelValues("rpc", "http", "", "", "")
	for _, wf := range workflows {
		m.tasksWaiting.WithLabelValues(wf)
		for _, src := range []string{"gateway", "user", "cron", "webhook"} {
			m.runsStarted.WithLabelValues(wf, src, "false")
		}
		for _, st := range []host.RunStatus{host.RunFinished, host.RunFailed, host.RunCancelled} {
			m.runsCompleted.WithLabelValues(wf, string(st))
		}
		m.webhooksReceived.WithLabelValues(wf)
		m.webhooksVerified.WithLabelValues(wf)
		for _, reason := range []string{"not_configured", "misconfigured", "invalid_payload", "invalid_signature", "server_error"} {
			m.webhooksRejected.WithLabelValues(wf, reason)
		}
	}
	for _, o := range []string{"approved", "denied"} {
		m.approvalDecisions.WithLabelValues(o)
	}
	m.signals.WithLabelValues("sent")
	for _, s := range []string{"manual", "scheduled"} {
		m.cronTriggers.WithLabelValues(s)
	}
	for _, s := range []string{"produced", "pending", "failed", "error"} {
		m.nodeOutput.WithLabelValues(s)
	}
	return m
}

// initAuthMode initialises the auth-event series of the configured mode.
func (m *Metrics) initAuthMode(mode string) {
	if m == nil {
		return
	}
	m.authMode = mode
	for _, t := range []string{"ws", "http"} {
		for j, o := range []string{"success", "failure"} {
			m.authSeen[transportIndex(t)][j] = m.authEvents.WithLabelValues(t, mode, o)
		}
	}
}

// withoutEmptyLabels gathers from g and drops the label pairs whose value
// is empty. A family of client_golang has one label set for all its series,
// so a label a series does not use is stored as ""; upstream emits only the
// labels each series has (docs/operations.md), and to Prometheus an empty
// label and an absent one are the same.
func withoutEmptyLabels(g prometheus.Gatherer) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		families, err := g.Gather()
		for _, f := range families {
			for _, metric := range f.Metric {
				// A new slice: the gathered one is the metric's own.
				labels := make([]*dto.LabelPair, 0, len(metric.Label))
				for _, l := range metric.Label {
					if l.GetValue() != "" {
						labels = append(labels, l)
					}
				}
				metric.Label = labels
			}
		}
		return families, err
	})
}

// serveMetrics answers GET /metrics in the Prometheus text format.
func (s *Server) serveMetrics(c echo.Context) error {
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Smithers-API-Version", "v1")
	c.Request().Header.Del("Accept") // always the 0.0.4 text format
	promhttp.HandlerFor(withoutEmptyLabels(s.metrics.reg), promhttp.HandlerOpts{}).ServeHTTP(&metricsContentType{ResponseWriter: c.Response()}, c.Request())
	return nil
}

// metricsTextFormat is the content type of docs/operations.md.
const metricsTextFormat = "text/plain; version=0.0.4; charset=utf-8"

// metricsContentType answers with metricsTextFormat where promhttp would
// add "; escaping=underscores" to it.
type metricsContentType struct {
	http.ResponseWriter
	wrote bool
}

func (w *metricsContentType) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		if strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain; version=0.0.4;") {
			w.Header().Set("Content-Type", metricsTextFormat)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *metricsContentType) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// The recording methods below are nil-safe so that tests may run without
// metrics.

// RunStarted implements host.Observer.
func (m *Metrics) RunStarted(workflow, source string, resume bool) {
	if m == nil {
		return
	}
	r := "false"
	if resume {
		r = "true"
	}
	m.runsStarted.WithLabelValues(workflow, source, r).Inc()
}

// RunCompleted implements host.Observer.
func (m *Metrics) RunCompleted(workflow string, status host.RunStatus) {
	if m == nil {
		return
	}
	m.runsCompleted.WithLabelValues(workflow, string(status)).Inc()
}

func (m *Metrics) wsOpened() {
	if m == nil {
		return
	}
	m.connectionsTotal.WithLabelValues("ws").Inc()
	m.connectionsActive.WithLabelValues("ws").Inc()
}

func (m *Metrics) wsClosed() {
	if m == nil {
		return
	}
	m.connectionsActive.WithLabelValues("ws").Dec()
	m.connectionsClosed.WithLabelValues("ws", "close").Inc()
}

func (m *Metrics) wsRejected() {
	if m == nil {
		return
	}
	m.errors.WithLabelValues("connection_limit", "ws", "", "", "").Inc()
}

// wsEvicted counts sockets closed before connect to make room for newer
// ones (errors_total kind "unauthenticated_evicted").
func (m *Metrics) wsEvicted(n int) {
	if m == nil || n == 0 {
		return
	}
	m.errors.WithLabelValues("unauthenticated_evicted", "ws", "", "", "").Add(float64(n))
}

func (m *Metrics) received(transport, frameType string) {
	if m == nil {
		return
	}
	if frameType == "request" && (transport == "http" || transport == "ws") {
		m.requests[transportIndex(transport)].Inc()
		return
	}
	m.messagesReceived.WithLabelValues(transport, frameType, "").Inc()
}

// sentEvent counts a WebSocket event frame; the counter of each event name
// is looked up once.
func (m *Metrics) sentEvent(name string) {
	if m == nil {
		return
	}
	if c, ok := m.eventCounters.Load(name); ok {
		c.(prometheus.Counter).Inc()
		return
	}
	c := m.messagesSent.WithLabelValues("ws", "event", "", name, "", "")
	m.eventCounters.Store(name, c)
	c.Inc()
}

func (m *Metrics) sent(transport, frameType, outcome, event string) {
	if m == nil {
		return
	}
	if frameType == "response" && event == "" && (transport == "http" || transport == "ws") && (outcome == "ok" || outcome == "error") {
		j := 0
		if outcome == "error" {
			j = 1
		}
		m.responses[transportIndex(transport)][j].Inc()
		return
	}
	m.messagesSent.WithLabelValues(transport, frameType, outcome, event, "", "").Inc()
}

// webhookReceived counts a webhook request of workflow (every one).
func (m *Metrics) webhookReceived(workflow string) {
	if m == nil {
		return
	}
	m.webhooksReceived.WithLabelValues(workflow).Inc()
	m.messagesReceived.WithLabelValues("http", "webhook", workflow).Inc()
}

// webhookVerified counts a webhook whose signature matched.
func (m *Metrics) webhookVerified(workflow string) {
	if m != nil {
		m.webhooksVerified.WithLabelValues(workflow).Inc()
	}
}

// webhookRejected counts a webhook answered with an error: its reason
// (docs/workflows.md), the error kind "webhook" with its code, and the
// error response.
func (m *Metrics) webhookRejected(workflow, reason, code string) {
	if m == nil {
		return
	}
	m.webhooksRejected.WithLabelValues(workflow, reason).Inc()
	m.errors.WithLabelValues("webhook", "", "", code, workflow).Inc()
	m.messagesSent.WithLabelValues("http", "response", "error", "", "webhook", workflow).Inc()
}

// webhookAnswered counts a webhook's success response.
func (m *Metrics) webhookAnswered(workflow string) {
	if m != nil {
		m.messagesSent.WithLabelValues("http", "response", "ok", "", "webhook", workflow).Inc()
	}
}

// rpc records one dispatched call; a method name that is not a gateway
// method is recorded as "unknown".
func (m *Metrics) rpc(method, transport string, start time.Time, err error) {
	if m == nil {
		return
	}
	if !m.methods[method] {
		method = unknownMethod
	}
	h, ok := m.calls[rpcSeries{method, transport}]
	if !ok {
		h = rpcHandles{m.rpcCalls.WithLabelValues(method, transport), m.rpcDuration.WithLabelValues(method, transport)}
	}
	h.calls.Inc()
	h.duration.Observe(float64(time.Since(start).Microseconds()) / 1000)
	if err != nil {
		_, code := wireError(err)
		m.errors.WithLabelValues("rpc", transport, method, code, "").Inc()
	}
}

// errorKind counts an error that is not a dispatched call's: kind "auth"
// (a refused credential), "http" (a request refused before dispatch) or
// "frame" (an undecodable WebSocket frame).
func (m *Metrics) errorKind(kind, transport, code string) {
	if m != nil {
		m.errors.WithLabelValues(kind, transport, "", code, "").Inc()
	}
}

// nodeOutputServed records one getNodeOutput: its status ("produced",
// "pending", "failed", or "error" when it failed), the size of the stored output it served, and its duration.
func (m *Metrics) nodeOutputServed(status string, bytes int, start time.Time) {
	if m == nil {
		return
	}
	m.nodeOutput.WithLabelValues(status).Inc()
	if bytes > 0 {
		m.nodeOutputBytes.Observe(float64(bytes))
	}
	m.nodeOutputMs.Observe(float64(time.Since(start).Microseconds()) / 1000)
}

func (m *Metrics) authEvent(transport, mode string, ok bool) {
	if m == nil {
		return
	}
	outcome, j := "failure", 1
	if ok {
		outcome, j = "success", 0
	}
	if m.authMode != "" && mode == m.authMode && (transport == "http" || transport == "ws") {
		m.authSeen[transportIndex(transport)][j].Inc()
		return
	}
	m.authEvents.WithLabelValues(transport, mode, outcome).Inc()
}

func (m *Metrics) heartbeatTick() {
	if m != nil {
		m.heartbeatTicks.Inc()
	}
}

func (m *Metrics) backpressureDisconnect() {
	if m != nil {
		m.backpressure.Inc()
	}
}

func (m *Metrics) approvalDecision(approved bool) {
	if m == nil {
		return
	}
	o := "denied"
	if approved {
		o = "approved"
	}
	m.approvalDecisions.WithLabelValues(o).Inc()
}

func (m *Metrics) signalSent() {
	if m != nil {
		m.signals.WithLabelValues("sent").Inc()
	}
}

func (m *Metrics) cronTrigger(source string) {
	if m != nil {
		m.cronTriggers.WithLabelValues(source).Inc()
	}
}

// TasksWaiting sets the workflow's count of task attempts waiting for a
// concurrency slot (host.Observer).
func (m *Metrics) TasksWaiting(workflow string, waiting int) {
	if m != nil {
		m.tasksWaiting.WithLabelValues(workflow).Set(float64(waiting))
	}
}

// CronFired counts a run started by a scheduled cron (host.Observer).
func (m *Metrics) CronFired(string) { m.cronTrigger("scheduled") }
