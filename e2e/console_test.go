package e2e

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// consoleShots, when set, is the directory the console tests write their
// screenshots into (the README's come from
// go test ./e2e -run 'TestConsole$' -console.screenshots ../docs/screenshots).
var consoleShots = flag.String("console.screenshots", "", "write the console screenshots (PNG) into this directory")

// consoleWait bounds every wait for something to show in the browser.
const consoleWait = 30 * time.Second

// chromiumPath finds Debian's chromium. Without it the test is skipped
// with one line, except in CI (CI=true), where it fails.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not found: apt-get install chromium")
	}
	t.Skip("chromium not found: apt-get install chromium")
	return ""
}

// browser is one headless Chromium with a fresh profile; its tabs record
// every console error, uncaught exception and failed load.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	problems []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		// Its shared-memory files (disable-dev-shm-usage puts them in
		// the temp folder) go with the test's temp folder.
		chromedp.Env("TMPDIR=" + t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	allocCtx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelCtx)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium (%s): %v", path, err)
	}
	return &browser{t: t, ctx: ctx}
}

// tab is one browser tab (with its own sessionStorage).
type tab struct {
	b    *browser
	t    *testing.T
	ctx  context.Context
	name string
}

// tab opens a new tab; its console is watched from the start.
func (b *browser) tab(name string) *tab {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("open tab: %v", err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				b.mu.Lock()
				b.problems = append(b.problems, fmt.Sprintf("%s: %s (%s:%d)", name, m, m.URL, m.Line+1))
				b.mu.Unlock()
			}
		}
	}()
	return &tab{b: b, t: b.t, ctx: ctx, name: name}
}

// consoleProblems returns what the tabs logged as errors so far.
func (b *browser) consoleProblems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

func (tb *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, consoleWait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.fail("%s: %v", what, err)
	}
}

func (tb *tab) navigate(url string) {
	tb.t.Helper()
	tb.do("navigate to "+url, chromedp.Navigate(url))
}

func (tb *tab) click(sel string) {
	tb.t.Helper()
	deadline := time.Now().Add(consoleWait)
	for {
		tb.waitFor("a visible "+sel, fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.offsetParent !== null })()`, sel))
		ctx, cancel := context.WithTimeout(tb.ctx, consoleWait)
		err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel)))
		cancel()
		// The console re-renders a view when an event arrives; an element
		// found just before a re-render is gone by the time the click
		// lands ("Could not find node with given id"). A person would
		// click the new one, so the test does too.
		if err == nil {
			return
		}
		stale := strings.Contains(err.Error(), "Could not find node") || strings.Contains(err.Error(), "No node with given id")
		if !stale || time.Now().After(deadline) {
			tb.fail("click %s: %v", sel, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// setValue sets a field's value and fires its input and change events, as
// typing or picking would.
func (tb *tab) setValue(sel, value string) {
	tb.t.Helper()
	tb.waitFor(sel, fmt.Sprintf(`!!document.querySelector(%q)`, sel))
	tb.eval(fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.value = %q;
		e.dispatchEvent(new Event("input", {bubbles: true})); e.dispatchEvent(new Event("change", {bubbles: true})); return true })()`, sel, value))
}

// eval evaluates a JavaScript expression and decodes its JSON result.
func (tb *tab) eval(expr string) json.RawMessage {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, consoleWait)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr))
	if err != nil {
		tb.fail("evaluate %s: %v", expr, err)
	}
	return raw
}

func (tb *tab) evalString(expr string) string {
	tb.t.Helper()
	var s string
	if err := json.Unmarshal(tb.eval(expr), &s); err != nil {
		tb.fail("evaluate %s: not a string: %v", expr, err)
	}
	return s
}

func (tb *tab) evalBool(expr string) bool {
	tb.t.Helper()
	var ok bool
	_ = json.Unmarshal(tb.eval(expr), &ok)
	return ok
}

// waitFor polls a JavaScript condition until it is true.
func (tb *tab) waitFor(what, cond string) {
	tb.t.Helper()
	deadline := time.Now().Add(consoleWait)
	for {
		ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(() => { try { return Boolean(%s) } catch (e) { return false } })()`, cond)))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			tb.fail("timed out after %v waiting for %s", consoleWait, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitText waits until the element sel exists and its text contains want.
func (tb *tab) waitText(sel, want string) {
	tb.t.Helper()
	tb.waitFor(fmt.Sprintf("%q in %s", want, sel), fmt.Sprintf(`(document.querySelector(%q)?.innerText ?? "").includes(%q)`, sel, want))
}

// fail stops the test with what the page showed.
func (tb *tab) fail(format string, args ...any) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText.slice(0, 4000)`))
	tb.t.Fatalf("%s: %s\npage:\n%s\nconsole problems: %q", tb.name, fmt.Sprintf(format, args...), text, tb.b.consoleProblems())
}

// screenshot takes a full-page PNG and, with -console.screenshots, saves it.
func (tb *tab) screenshot(name string) []byte {
	tb.t.Helper()
	tb.eval(`document.querySelectorAll(".toast").forEach(t => t.remove());
		document.querySelectorAll(".fresh").forEach(e => e.classList.remove("fresh"));
		document.activeElement?.blur(); true`)
	ctx, cancel := context.WithTimeout(tb.ctx, consoleWait)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil || len(png) < 8 || string(png[1:4]) != "PNG" {
		tb.fail("screenshot %s: %v", name, err)
	}
	if *consoleShots != "" {
		if err := os.MkdirAll(*consoleShots, 0o755); err != nil {
			tb.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(*consoleShots, name), png, 0o644); err != nil {
			tb.t.Fatal(err)
		}
	}
	return png
}

// viewport sets the tab's viewport (a phone when mobile).
func (tb *tab) viewport(w, h int64, mobile bool) {
	tb.t.Helper()
	var opts []chromedp.EmulateViewportOption
	if mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	tb.do("set the viewport", chromedp.EmulateViewport(w, h, opts...))
}

// colorScheme emulates prefers-color-scheme ("" resets it).
func (tb *tab) colorScheme(scheme string) {
	tb.t.Helper()
	params := emulation.SetEmulatedMediaParams{}
	if scheme != "" {
		params.Features = []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}
	}
	if _, err := chromedp.Call(tb.ctx, emulation.SetEmulatedMedia, params); err != nil {
		tb.fail("emulate %s: %v", scheme, err)
	}
}

// noHorizontalScroll fails when the page is wider than the viewport.
func (tb *tab) noHorizontalScroll(page string) {
	tb.t.Helper()
	raw := tb.eval(`[document.documentElement.scrollWidth, window.innerWidth]`)
	var w [2]int
	_ = json.Unmarshal(raw, &w)
	if w[0] > w[1] || w[1] == 0 {
		wide := tb.evalString(`[...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5).slice(0, 5).map(e => e.tagName + "." + e.className).join(", ")`)
		tb.fail("%s scrolls sideways at %d px: scrollWidth %d (too wide: %s)", page, w[1], w[0], wide)
	}
}

// signIn signs in from the sign-in form.
func (tb *tab) signIn(url, token string) {
	tb.t.Helper()
	tb.navigate(url + "/console")
	tb.waitFor("the sign-in form", `document.querySelector("input[name=token]")`)
	tb.do("type the token", chromedp.SendKeys(chromedp.CSS("input[name=token]"), token))
	tb.click(".signin-form button[type=submit]")
	tb.waitFor("the console after sign-in", `document.querySelector("nav[aria-label=Main]") && document.querySelector("main .page-head h1")`)
}

// issueScopedToken issues a token with scopes for userID into the
// gateway's store, and waits until the gateway accepts it.
func issueScopedToken(t *testing.T, g *Gateway, scopes, userID string) string {
	t.Helper()
	dir := filepath.Dir(g.Store)
	code, out, errOut := runToExit(t, dir, baseEnv(dir), "token", "issue", "--scopes", scopes, "--user-id", userID, "--store", g.Store)
	if code != 0 {
		t.Fatalf("smithers token issue exited %d: %s", code, errOut)
	}
	tok, _, _ := strings.Cut(out, "\n")
	tok = strings.TrimSpace(tok)
	eventually(t, 10*time.Second, "the gateway to accept the new token", func() bool {
		status, _, err := tryRPC(g.URL, tok, "listRuns", map[string]any{"limit": 1})
		return err == nil && status == 200
	})
	return tok
}

// TestConsole drives the operator console in headless Chromium against the
// real binary: sign in; launch the quickstart from the form; watch the run
// reach its approval live; approve it in the inbox; see it finish with its
// output and logs; the runs list updates live; every page fits a 390 px
// phone; a run:read token sees the approve button disabled naming
// approval:submit and is signed out when revoked; nothing is logged to the
// browser console.
func TestConsole(t *testing.T) {
	b := newBrowser(t)
	g := startGateway(t, exampleModule("quickstart"))
	viewer := issueScopedToken(t, g, "run:read", "viewer")
	op := b.tab("operator")

	// Sign in: the token is kept in sessionStorage, the identity is shown.
	op.navigate(g.URL + "/console")
	op.waitFor("the sign-in form", `document.querySelector("input[name=token]")`)
	op.screenshot("signin.png")
	op.do("type a wrong token", chromedp.SendKeys(chromedp.CSS("input[name=token]"), "smithers_not-a-token"))
	op.click(".signin-form button[type=submit]")
	op.waitFor("the refusal", `(document.querySelector(".signin-form .form-error")?.innerText ?? "").length > 0 && !document.querySelector(".signin-form button").disabled`)
	op.signIn(g.URL, g.Token)
	op.waitText("main", "No runs yet")
	if got := op.evalString(`sessionStorage.getItem("smithers.gateway.console.token")`); got != g.Token {
		t.Fatalf("sessionStorage token = %q, want the token signed in with", got)
	}
	op.waitText(".identity .who", approverID)
	op.eval(`window.__sameDocument = true`) // gone if anything below reloads the page

	// The keyboard: Tab reaches the skip link first, then the navigation,
	// each with a visible focus ring; Enter on a nav link navigates.
	op.eval(`document.activeElement?.blur(); true`)
	op.do("press Tab", chromedp.KeyEvent("\t"))
	op.waitFor("the skip link focused", `document.activeElement?.classList.contains("skip")`)
	for i := 0; i < 2; i++ {
		op.do("press Tab", chromedp.KeyEvent("\t"))
	}
	op.waitFor("the Runs link focused with a visible ring", `document.activeElement?.matches("a.nav-link:focus-visible") && getComputedStyle(document.activeElement).outlineStyle !== "none"`)
	op.do("press Tab", chromedp.KeyEvent("\t"))
	op.do("press Enter", chromedp.KeyEvent("\r"))
	op.waitFor("the approvals page", `location.pathname === "/console/approvals"`)

	// Launch from the form: invalid JSON is refused before anything is sent.
	op.click(`a.nav-link[href="/console/launch"]`)
	op.waitText(".wf-picker", "Quickstart")
	op.waitText(".wf-picker", "A task, an approval, then a task")
	op.setValue(".launch-form textarea", `{"name": `)
	op.click(`.launch-form button[type=submit]`)
	op.waitText(".launch-form .form-error", "Not valid JSON")
	if runs := g.rpc("listRuns", map[string]any{}); string(runs) != "[]" {
		t.Fatalf("an invalid input launched a run: %s", runs)
	}
	op.setValue(".launch-form textarea", `{"name": "console"}`)
	op.setValue(".launch-form input[type=text]", "console-e2e-1")
	op.screenshot("launch.png")
	op.click(`.launch-form button[type=submit]`)
	op.waitFor("the new run's page", `/\/console\/runs\/[0-9a-f-]{36}$/.test(location.pathname)`)
	runID := op.evalString(`location.pathname.split("/").pop()`)

	// The run reaches its approval live, without a reload.
	op.waitText(".run-title", "Waiting for approval")
	op.waitFor("the run's pending approval", `document.querySelector(".run-approvals article.approval[data-node=ship]")`)
	op.waitFor("draft finished in the timeline", `document.querySelector(".timeline li[data-node=draft].state-finished")`)
	op.waitText(".events-table", "approval.requested")
	op.waitText(".run-body", `name: "console"`) // the input

	// Approve it in the inbox, with a note; the decided run is followed live.
	op.click(`a.nav-link[href="/console/approvals"]`)
	card := fmt.Sprintf(`article.approval[data-run=%q]`, runID)
	op.waitText(card, `Ship "Hello, console!"?`)
	op.waitText(`a.nav-link[href="/console/approvals"] .count`, "1")
	op.screenshot("approvals.png")
	op.setValue(card+" textarea", "looks good")
	op.click(card + " button.btn-ok")
	op.waitText(fmt.Sprintf(`.decided-list li[data-run=%q]`, runID), "Finished")
	op.waitFor("the inbox to empty", `document.body.innerText.includes("Nothing waits for a decision")`)
	g.waitStatus(runID, "finished")

	// The run page shows the output, the logs and the attempts.
	op.click(fmt.Sprintf(`.decided-list li[data-run=%q] a`, runID))
	op.waitText(".run-title", "Finished")
	op.waitText(".run-body", `shipped: true`)
	op.waitText(".run-body", `publishedBy: "e2e-approver"`)
	op.waitText(".logs", "publishing Hello, console!")
	op.waitText(".events-table", "run.completed")
	op.click(`.timeline li[data-node=publish] summary`)
	op.waitText(`.timeline li[data-node=publish] .attempts`, "#1")
	op.waitText(`.timeline li[data-node=publish] .node-output`, "publishedBy")
	op.screenshot("run.png")
	op.colorScheme("dark")
	op.screenshot("run-dark.png")
	op.colorScheme("")

	// The runs list: newest first, live, filtered.
	op.click(`a.nav-link[href="/console/runs"]`)
	row := fmt.Sprintf(`tr[data-run=%q]`, runID)
	op.waitText(row, "Finished")
	second := g.launch("quickstart", map[string]any{"name": "live"})
	op.waitText(fmt.Sprintf(`tr[data-run=%q]`, second), "Waiting for approval")
	if first := op.evalString(`document.querySelector(".runs-table tbody tr").dataset.run`); first != second {
		t.Fatalf("the newest run is not first: first row %s, want %s", first, second)
	}
	op.waitText(`a.nav-link[href="/console/approvals"] .count`, "1")
	op.screenshot("runs.png")
	op.setValue("select[name=status]", "finished")
	op.waitFor("the status filter", fmt.Sprintf(`location.search.includes("status=finished") && document.querySelectorAll(".runs-table tbody tr").length === 1 && document.querySelector(%q)`, row))
	op.setValue("select[name=status]", "")
	op.setValue("input[name=q]", second[:6])
	op.waitFor("the run id search", fmt.Sprintf(`document.querySelectorAll(".runs-table tbody tr").length === 1 && document.querySelector(%q)`, fmt.Sprintf(`tr[data-run=%q]`, second)))
	// Crons: add one, disable it, trigger it now.
	op.click(`a.nav-link[href="/console/crons"]`)
	op.waitText("main", "No schedules yet")
	op.setValue(".cron-form input[placeholder='*/5 * * * *']", "0 0 1 1 *")
	op.setValue(".cron-form input[placeholder='generated when empty']", "yearly")
	op.click(".cron-form button[type=submit]")
	op.waitText(`tr[data-cron="yearly"]`, "Enabled")
	op.click(`tr[data-cron="yearly"] button[data-method=cronCreate]`)
	op.waitText(`tr[data-cron="yearly"]`, "Disabled")
	var crons []struct {
		CronID  string `json:"cronId"`
		Enabled bool   `json:"enabled"`
	}
	decode(t, g.rpc("cronList", map[string]any{}), &crons)
	if len(crons) != 1 || crons[0].CronID != "yearly" || crons[0].Enabled {
		t.Fatalf("cronList after disabling = %+v, want yearly disabled", crons)
	}
	op.click(`tr[data-cron="yearly"] button[data-method=cronRun]`)
	op.waitText(".toasts", "Started")
	triggered := op.evalString(`document.querySelector(".toasts a").textContent`)
	g.waitStatus(triggered, "waiting-approval")
	op.click(`.toasts a`)
	op.waitText(".run-title", "Waiting for approval")
	op.click(".run-head button.btn-danger") // Cancel run, then confirm
	op.waitText(".run-head button.btn-danger", "Confirm cancel")
	op.click(".run-head button.btn-danger")
	op.waitText(".run-title", "Cancelled")
	if !op.evalBool(`window.__sameDocument === true`) {
		t.Fatal("the page was reloaded during the flow; the console must update in place")
	}
	op.navigate(g.URL + "/console/crons")
	op.waitText(`tr[data-cron="yearly"]`, "Disabled")
	op.screenshot("crons.png")

	// A phone: no page scrolls sideways.
	op.viewport(390, 844, true)
	for _, p := range []struct{ path, ready, shot string }{
		{"/console/runs", ".runs-table", "runs-phone.png"},
		{"/console/runs/" + runID, ".timeline li[data-node=publish]", ""},
		{"/console/approvals", fmt.Sprintf(`article.approval[data-run=%q]`, second), ""},
		{"/console/launch", ".wf-option", ""},
		{"/console/crons", "main .page-head", ""},
	} {
		op.navigate(g.URL + p.path)
		op.waitFor(p.ready, fmt.Sprintf(`document.querySelector(%q)`, p.ready))
		op.noHorizontalScroll(p.path)
		if p.shot != "" {
			op.screenshot(p.shot)
		}
	}
	op.viewport(1280, 900, false)

	// A run:read token sees the decisions it may not take disabled, with
	// the scope it lacks.
	ro := b.tab("viewer")
	ro.signIn(g.URL, viewer)
	ro.waitText(".identity .who", "viewer")
	ro.click(`a.nav-link[href="/console/approvals"]`)
	roCard := fmt.Sprintf(`article.approval[data-run=%q]`, second)
	ro.waitFor("the pending approval", fmt.Sprintf(`document.querySelector(%q)`, roCard))
	if !ro.evalBool(fmt.Sprintf(`document.querySelector(%q).disabled`, roCard+" button.btn-ok")) {
		t.Fatal("the approve button is enabled for a run:read token")
	}
	if got := ro.evalString(fmt.Sprintf(`document.querySelector(%q).dataset.missingScope`, roCard+" button.btn-ok")); got != "approval:submit" {
		t.Fatalf("the disabled approve button names %q, want approval:submit", got)
	}
	ro.waitText(roCard, "Requires approval:submit")
	ro.click(`a.nav-link[href="/console/launch"]`)
	ro.waitText(".launch-form", "Requires run:write")
	ro.click(`a.nav-link[href="/console/crons"]`)
	ro.waitText("main", "cron:read")
	if problems := b.consoleProblems(); len(problems) > 0 {
		t.Fatalf("the browser console logged errors:\n%s", strings.Join(problems, "\n"))
	}

	// Revoking the token closes its socket with 1008: back to sign-in.
	revokeToken(t, g.Store, viewer)
	ro.waitFor("the sign-in form after revocation", `document.querySelector("input[name=token]")`)
	ro.waitText(".signin-card", "revoked")
	if got := ro.evalString(`String(sessionStorage.getItem("smithers.gateway.console.token"))`); got != "null" {
		t.Fatalf("the revoked token is still in sessionStorage: %q", got)
	}
}

// TestConsoleFollowsRunAcrossRestart: the run page follows a run's events
// with streamRunEvents; when the gateway dies (SIGKILL) and comes back on
// the same port, the page reconnects, resumes after the last seq it saw
// and shows the run finish, with every event once and in order.
func TestConsoleFollowsRunAcrossRestart(t *testing.T) {
	b := newBrowser(t)
	g := startGateway(t, exampleModule("quickstart"))
	op := b.tab("operator")
	op.signIn(g.URL, g.Token)
	runID := g.launch("quickstart", map[string]any{"name": "restart"})
	g.waitStatus(runID, "waiting-approval")
	op.navigate(g.URL + "/console/runs/" + runID)
	op.waitText(".run-title", "Waiting for approval")
	op.waitText(".events-table", "approval.requested")
	op.waitText(".stream-status", "Following live")

	g.kill9()
	op.waitText(".conn", "Reconnecting")
	g.restartOnSamePort()
	g.approve(runID, "ship")
	g.waitStatus(runID, "finished")

	op.waitText(".run-title", "Finished")
	op.waitText(".logs", "publishing Hello, restart!")
	op.waitText(".stream-status", "Following live")
	op.waitText(".conn", "Live")
	op.waitText(".events-table", "run.completed")
	op.eval(`document.querySelector(".panel-head input[type=checkbox]").click()`)
	op.waitText(".events-table", "task.output")
	var seqs []int
	if err := json.Unmarshal(op.eval(`[...document.querySelectorAll(".events-table tbody tr td:first-child")].map(td => Number(td.textContent))`), &seqs); err != nil {
		t.Fatal(err)
	}
	for i, s := range seqs {
		if s != i+1 {
			t.Fatalf("event seqs on the page are %v: want 1..%d, each once, in order", seqs, len(seqs))
		}
	}
	if n := strings.Count(op.evalString(`document.querySelector(".events-table").innerText`), "run.completed"); n != 1 {
		t.Fatalf("run.completed shown %d times, want once", n)
	}
}

// approvalModesModule asks for a select decision, a rank decision and a
// decision only another user may take.
const approvalModesModule = `
export default function register(gateway) {
  gateway.register("release", async (ctx) => {
    const env = await ctx.approval("env", {
      request: { title: "Where to release?" }, mode: "select",
      options: [{ key: "staging", label: "Staging" }, { key: "prod", label: "Production", summary: "customers see it" }],
    });
    const order = await ctx.approval("order", {
      request: { title: "Order the regions" }, mode: "rank",
      options: [{ key: "eu", label: "Europe" }, { key: "us", label: "Americas" }, { key: "ap", label: "Asia-Pacific" }],
    });
    await ctx.approval("ops", { request: { title: "Observability check" }, allowedScopes: ["observability:read"] });
    const boss = await ctx.approval("boss", { request: { title: "Sign-off" }, allowedUsers: ["someone-else"], onDeny: "continue" });
    return { env: env.value, order: order.value, boss: boss.approved };
  }, { readableName: "Release" });
}
`

// TestConsoleApprovalModes decides a select and a rank approval in the
// inbox (the choice reaches the workflow) and shows an approval reserved to
// another user as not decidable by this one.
func TestConsoleApprovalModes(t *testing.T) {
	b := newBrowser(t)
	g := startGateway(t, writeModule(t, approvalModesModule))
	op := b.tab("operator")
	op.signIn(g.URL, g.Token)
	runID := g.launch("release", map[string]any{})
	op.click(`a.nav-link[href="/console/approvals"]`)

	// select: approving without a choice is refused in the page.
	env := `article.approval[data-node=env]`
	op.waitText(env, "Where to release?")
	op.waitText(env, "customers see it")
	op.viewport(390, 844, true)
	op.noHorizontalScroll("an approval in select mode")
	op.screenshot("approval-select-phone.png")
	op.viewport(1280, 900, false)
	op.click(env + " button.btn-ok")
	op.waitText(env+" .form-error", "Pick an option")
	op.click(env + ` input[value=prod]`)
	op.click(env + " button.btn-ok")

	// rank: move Asia-Pacific to the top with the keyboard-operable buttons.
	order := `article.approval[data-node=order]`
	op.waitText(order, "Order the regions")
	op.colorScheme("dark")
	op.screenshot("approval-rank-dark.png")
	op.colorScheme("")
	op.click(order + ` li[data-key=ap] button[data-dir=up]`)
	op.waitFor("ap second", fmt.Sprintf(`[...document.querySelectorAll(%q)].map(l => l.dataset.key).join() === "eu,ap,us"`, order+" li"))
	op.click(order + ` li[data-key=ap] button[data-dir=up]`)
	op.waitFor("ap first", fmt.Sprintf(`[...document.querySelectorAll(%q)].map(l => l.dataset.key).join() === "ap,eu,us"`, order+" li"))
	op.click(order + " button.btn-ok")

	// allowedScopes: a token with approval:submit but without the scope
	// the approval asks for sees it disabled, naming that scope.
	ops := `article.approval[data-node=ops]`
	op.waitText(ops, "Observability check")
	narrow := b.tab("narrow")
	narrow.signIn(g.URL, issueScopedToken(t, g, "run:read,approval:submit", "narrow"))
	narrow.click(`a.nav-link[href="/console/approvals"]`)
	narrow.waitText(ops, "Requires one of observability:read")
	if !narrow.evalBool(fmt.Sprintf(`document.querySelector(%q).disabled`, ops+" button.btn-ok")) {
		t.Fatal("an approval whose allowedScopes the token lacks can be approved")
	}
	op.click(ops + " button.btn-ok")

	// allowedUsers: this token's user may not decide.
	boss := `article.approval[data-node=boss]`
	op.waitText(boss, "Only someone-else may decide")
	if !op.evalBool(fmt.Sprintf(`document.querySelector(%q).disabled && document.querySelector(%q).disabled`, boss+" button.btn-ok", boss+" button.btn-danger")) {
		t.Fatal("an approval reserved to another user can be decided")
	}
	g.rpcAs(issueScopedToken(t, g, "*", "someone-else"), "submitApproval",
		map[string]any{"runId": runID, "nodeId": "boss", "decision": map[string]any{"approved": true}})
	op.waitFor("the inbox to empty", `document.body.innerText.includes("Nothing waits for a decision")`)
	run := g.waitStatus(runID, "finished")
	var out struct {
		Env   map[string]any `json:"env"`
		Order map[string]any `json:"order"`
		Boss  bool           `json:"boss"`
	}
	decode(t, run.Output, &out)
	if out.Env["selected"] != "prod" || fmt.Sprint(out.Order["ranked"]) != "[ap eu us]" || !out.Boss {
		t.Fatalf("the decisions reached the workflow as %s", run.Output)
	}
	if problems := b.consoleProblems(); len(problems) > 0 {
		t.Fatalf("the browser console logged errors:\n%s", strings.Join(problems, "\n"))
	}
}

// runActionsModule sleeps, waits for a signal, then runs a task whose
// first attempt fails.
const runActionsModule = `
import { SmithersError } from "smithers-orchestrator";
export default function register(gateway) {
  gateway.register("flaky", async (ctx) => {
    await ctx.sleep("settle", 50);
    const got = await ctx.signal("go");
    return await ctx.task("work", async (t) => {
      t.emit("attempt " + t.attempt + "\n", t.attempt < 2 ? "stderr" : "stdout");
      if (t.attempt < 2) throw new SmithersError("FLAKY", "the first attempt fails", { retryable: false });
      return { ok: true, got };
    }, { retries: 0 });
  }, { readableName: "Flaky" });
}
`

// TestConsoleRunActions sends a signal from the run page, sees the run
// fail with its error and the failed attempt, retries it from the failed
// step, and sees it finish with a second attempt; a timer step's output
// (which has none) is shown without an error.
func TestConsoleRunActions(t *testing.T) {
	b := newBrowser(t)
	g := startGateway(t, writeModule(t, runActionsModule))
	op := b.tab("operator")
	op.signIn(g.URL, g.Token)
	runID := g.launch("flaky", map[string]any{})
	op.navigate(g.URL + "/console/runs/" + runID)
	op.waitText(".run-title", "Waiting for a signal")
	op.waitText(".banner", "Waiting for a signal")

	op.click(`.run-head button[data-method=submitSignal]`)
	op.setValue(".signal-form input.mono", "go")
	op.setValue(".signal-form textarea", `{"n": 1`)
	op.click(".signal-form button[type=submit]")
	op.waitText(".signal-form .form-error", "Not valid JSON")
	op.setValue(".signal-form textarea", `{"n": 1}`)
	op.click(".signal-form button[type=submit]")
	op.waitText(".toasts", "Signal go delivered")

	op.waitText(".run-title", "Failed")
	op.waitText(".error-box", "FLAKY")
	op.waitFor("work failed in the timeline", `document.querySelector(".timeline li[data-node=work].state-failed")`)
	op.waitText(".logs", "attempt 1")
	op.click(`.run-head button[data-method=resumeRun].btn-primary`) // Retry from failed step
	op.waitText(".run-title", "Finished")
	op.waitText(".run-body", "ok: true")
	op.waitText(".logs", "attempt 2")
	op.click(`.timeline li[data-node=work] summary`)
	op.waitFor("two attempts, the first failed", `(() => { const rows = [...document.querySelectorAll(".timeline li[data-node=work] .attempts tbody tr")].map(r => r.innerText);
		return rows.length === 2 && rows[0].includes("Failed") && rows[0].includes("FLAKY") && rows[1].includes("Finished") })()`)
	op.click(`.timeline li[data-node=settle] summary`)
	op.waitText(`.timeline li[data-node=settle]`, "settles without a value")
	if problems := b.consoleProblems(); len(problems) > 0 {
		t.Fatalf("the browser console logged errors:\n%s", strings.Join(problems, "\n"))
	}
}

// TestConsoleRunsPaging pages through more runs than fit a page with the
// keyset cursor, forwards and back, and searches by run id prefix.
func TestConsoleRunsPaging(t *testing.T) {
	b := newBrowser(t)
	g := startGateway(t, writeModule(t, `export default function register(gateway) {
  gateway.register("noop", async () => ({ done: true }), { readableName: "No-op" });
}`))
	var ids []string
	for i := 0; i < 53; i++ {
		ids = append(ids, g.launch("noop", map[string]any{"i": i}))
	}
	g.waitStatus(ids[len(ids)-1], "finished")
	op := b.tab("operator")
	op.signIn(g.URL, g.Token)
	rows := `document.querySelectorAll(".runs-table tbody tr")`
	op.waitFor("a first page of 50", rows+`.length === 50`)
	if first := op.evalString(rows + `[0].dataset.run`); first != ids[52] {
		t.Fatalf("first row %s, want the newest run %s", first, ids[52])
	}
	op.click(".pager button:last-child") // Older
	op.waitFor("the last 3 runs", rows+`.length === 3 && location.search.includes("after=")`)
	if last := op.evalString(rows + `[2].dataset.run`); last != ids[0] {
		t.Fatalf("last row %s, want the oldest run %s", last, ids[0])
	}
	op.waitFor("no Older button on the last page", `!document.querySelector(".pager").innerText.includes("Older")`)
	op.click(".pager button:first-child") // Newer
	op.waitFor("the first page again", rows+`.length === 50 && !location.search.includes("after=")`)
	op.waitFor("the workflow list", `document.querySelector("select[name=workflow] option[value=noop]")`)
	op.setValue("select[name=workflow]", "noop")
	op.waitFor("the workflow filter", `location.search.includes("workflow=noop") && `+rows+`.length === 50`)
	if problems := b.consoleProblems(); len(problems) > 0 {
		t.Fatalf("the browser console logged errors:\n%s", strings.Join(problems, "\n"))
	}
}

// TestConsoleTrustedProxy: behind a trusted proxy the identity comes from
// the proxy's headers, so the console connects without asking for a token
// and shows what the default scopes allow.
func TestConsoleTrustedProxy(t *testing.T) {
	b := newBrowser(t)
	g := startGatewayWith(t, gatewayConfig{module: exampleModule("quickstart"),
		env: []string{"SMITHERS_GATEWAY_AUTH_MODE=trusted-proxy", "SMITHERS_GATEWAY_DEFAULT_SCOPES=run:read"}})
	op := b.tab("proxied")
	op.navigate(g.URL + "/console/launch")
	op.waitText(".launch-form", "Requires run:write")
	op.waitText(".identity", "anonymous")
	if op.evalBool(`!!document.querySelector("input[name=token]")`) {
		t.Fatal("the console asked for a token behind a trusted proxy")
	}
	if got := op.evalString(`[...document.querySelectorAll(".identity .scopes li")].map(l => l.textContent).join()`); got != "run:read" {
		t.Fatalf("scopes shown %q, want run:read", got)
	}
	if problems := b.consoleProblems(); len(problems) > 0 {
		t.Fatalf("the browser console logged errors:\n%s", strings.Join(problems, "\n"))
	}
}
