package jsruntime

import (
	"strings"
	"testing"
)

func TestGlobalsScripts(t *testing.T) {
	rt := scriptRuntime(t)
	tests := []struct {
		name, expr string
		want       any
	}{
		// No Node.js.
		{"no process", `typeof process`, "undefined"},
		{"no require", `typeof require`, "undefined"},
		{"no module", `typeof module + typeof exports`, "undefinedundefined"},
		{"globals not enumerable", `["URL", "URLSearchParams", "TextEncoder", "TextDecoder", "atob", "btoa"].filter(k => Object.keys(globalThis).includes(k)).length`, int64(0)},
		{"globals defined", `[typeof URL, typeof URLSearchParams, typeof TextEncoder, typeof TextDecoder, typeof atob, typeof btoa].join()`, "function,function,function,function,function,function"},

		// TextEncoder / TextDecoder.
		{"encoder encoding", `new TextEncoder().encoding`, "utf-8"},
		{"encode bytes", `Array.from(new TextEncoder().encode("é✓😀")).join()`, "195,169,226,156,147,240,159,152,128"},
		{"encode is Uint8Array", `new TextEncoder().encode("a") instanceof Uint8Array`, true},
		{"encode nothing", `new TextEncoder().encode().length`, int64(0)},
		{"encode lone surrogate", `Array.from(new TextEncoder().encode("\uD800")).join()`, "239,191,189"},
		{"round trip", `new TextDecoder().decode(new TextEncoder().encode("héllo wörld ✓ 😀 日本"))`, "héllo wörld ✓ 😀 日本"},
		{"decode ArrayBuffer", `new TextDecoder().decode(new TextEncoder().encode("ab€").buffer)`, "ab€"},
		{"decode DataView", `const b = new TextEncoder().encode("xyé"); return new TextDecoder().decode(new DataView(b.buffer, 1))`, "yé"},
		{"decode subarray", `new TextDecoder().decode(new TextEncoder().encode("abcdef").subarray(2, 4))`, "cd"},
		{"decode nothing", `new TextDecoder().decode()`, ""},
		{"decoder label utf8", `new TextDecoder("UTF8").encoding`, "utf-8"},
		{"decoder options", `const d = new TextDecoder("utf-8", {fatal: true, ignoreBOM: true}); return [d.fatal, d.ignoreBOM].join()`, "true,true"},
		{"replacement", `new TextDecoder().decode(new Uint8Array([0x61, 0xE2, 0x82, 0x62, 0xFF, 0x63]))`, "a\uFFFDb\uFFFDc"},
		{"truncated at end", `new TextDecoder().decode(new Uint8Array([0x61, 0xF0, 0x9F]))`, "a\uFFFD"},
		{"surrogate bytes", `new TextDecoder().decode(new Uint8Array([0xED, 0xA0, 0x80]))`, "\uFFFD\uFFFD\uFFFD"},
		{"BOM stripped", `new TextDecoder().decode(new Uint8Array([0xEF, 0xBB, 0xBF, 0x61]))`, "a"},
		{"BOM kept", `new TextDecoder("utf-8", {ignoreBOM: true}).decode(new Uint8Array([0xEF, 0xBB, 0xBF, 0x61])).length`, int64(2)},
		{"streaming", `const d = new TextDecoder(); const bytes = new TextEncoder().encode("€😀");
			let s = ""; for (const b of bytes) s += d.decode(new Uint8Array([b]), {stream: true}); return s + d.decode()`, "€😀"},
		{"encodeInto", `const dst = new Uint8Array(5); const r = new TextEncoder().encodeInto("a€😀", dst);
			return [r.read, r.written, Array.from(dst).join(" ")].join("|")`, "2|4|97 226 130 172 0"},
		{"encodeInto pair", `const r = new TextEncoder().encodeInto("😀x", new Uint8Array(8)); return r.read + "," + r.written`, "3,5"},

		// atob / btoa.
		{"btoa", `btoa("hello")`, "aGVsbG8="},
		{"btoa latin1", `btoa("\u00ff\u00fe")`, "//4="},
		{"btoa empty", `btoa("")`, ""},
		{"atob", `atob("aGVsbG8=")`, "hello"},
		{"atob whitespace", `atob(" aGVs\n bG8=\t")`, "hello"},
		{"atob no padding", `atob("aGVsbG8")`, "hello"},
		{"atob latin1", `atob("//4=").charCodeAt(0) + "," + atob("//4=").charCodeAt(1)`, "255,254"},
		{"atob non-zero pad bits", `atob("YR==").charCodeAt(0)`, int64(97)},
		{"round trip binary", `const s = String.fromCharCode(...Array.from({length: 256}, (_, i) => i)); return atob(btoa(s)) === s`, true},

		// URL / URLSearchParams.
		{"URL parts", `const u = new URL("https://user:pw@example.com:8443/a/b?x=1&y=two#frag");
			return [u.protocol, u.username, u.hostname, u.port, u.pathname, u.search, u.hash, u.origin].join(" ")`,
			"https: user example.com 8443 /a/b ?x=1&y=two #frag https://example.com:8443"},
		{"URL relative", `new URL("../c?q", "https://example.com/a/b/").href`, "https://example.com/a/c?q"},
		{"URL relative file", `new URL("items", "https://example.com/api/v1/").href`, "https://example.com/api/v1/items"},
		{"URL relative sibling", `new URL("items", "https://example.com/api/v1").href`, "https://example.com/api/items"},
		{"URL absolute path", `new URL("/x", new URL("https://example.com/a/b")).href`, "https://example.com/x"},
		{"URL absolute input", `new URL("http://other.org/y", "https://example.com/a").href`, "http://other.org/y"},
		{"URL instanceof", `const u = new URL("https://e.com"); return u instanceof URL && u.constructor === URL && String(u) === "https://e.com/"`, true},
		{"URL canParse", `[URL.canParse("https://e.com"), URL.canParse("nope"), URL.canParse("x", "https://e.com")].join()`, "true,false,true"},
		{"URL set existing query", `const u = new URL("https://e.com/p?x=1"); u.searchParams.set("x", "2"); u.searchParams.append("y", "3"); return u.search + " " + u.href`, "?x=2&y=3 https://e.com/p?x=2&y=3"},
		{"URL setters", `const u = new URL("https://e.com/p"); u.pathname = "/q"; u.hash = "h"; return u.href`, "https://e.com/q#h"},
		{"URL keeps trailing slash", `new URL("https://example.com/a/b/").href`, "https://example.com/a/b/"},
		{"URL root path", `new URL("https://example.com").href`, "https://example.com/"},
		{"URL normalizes", `new URL("HTTPS://Example.COM:443/./a/../b/./").href`, "https://example.com/b/"},
		{"URL origin with port", `new URL("http://example.com:8080/x").origin`, "http://example.com:8080"},
		{"URL IDNA host", `new URL("https://bücher.example/").host`, "xn--bcher-kva.example"},
		{"URL IPv6", `const u = new URL("http://[::1]:3000/x"); return u.host + " " + u.hostname`, "[::1]:3000 [::1]"},
		{"URL underscore host", `new URL("/x", "http://my_service:8080/a").href`, "http://my_service:8080/x"},
		{"URL opaque", `const u = new URL("mailto:a@b.c?subject=hi"); return u.pathname + " " + u.search + " " + u.origin`, "a@b.c ?subject=hi null"},
		{"URL query reference", `new URL("?x=1", "https://e.com/a/b").href`, "https://e.com/a/b?x=1"},
		{"URL fragment reference", `new URL("#f", "https://e.com/a/b?q").href`, "https://e.com/a/b?q#f"},
		{"URL scheme-relative", `new URL("//other.org/p", "https://e.com/a").href`, "https://other.org/p"},
		{"URL above root", `new URL("../../../../x", "https://e.com/a/").href`, "https://e.com/x"},
		{"URL credentials", `const u = new URL("https://user:p%40ss@e.com/"); return u.username + " " + u.password`, "user p%40ss"},
		{"URL percent-encoding", `new URL("https://e.com/é x?q=é'#é").href`, "https://e.com/%C3%A9%20x?q=%C3%A9%27#%C3%A9"},
		{"URL whitespace", "return new URL(' https://e.com/\\tx\\n ').href", "https://e.com/x"},
		{"URL file", `const u = new URL("file:///etc/hosts"); return u.href + " " + u.origin`, "file:///etc/hosts null"},
		{"URL setters compose", `const u = new URL("https://e.com/p"); u.protocol = "http"; u.port = "8080"; u.hostname = "h.org";
			u.username = "a b"; u.password = "p:w"; u.pathname = "x y/z?"; u.search = "q=1"; u.hash = "#top"; return u.href`,
			"http://a%20b:p%3Aw@h.org:8080/x%20y/z%3F?q=1#top"},
		{"URL host setter", `const u = new URL("https://e.com/p"); u.host = "x.org:81"; return u.href`, "https://x.org:81/p"},
		{"URL default port setter", `const u = new URL("https://e.com:8443/p"); u.port = "443"; return u.href + "|" + u.port`, "https://e.com/p|"},
		{"URL refuses special to opaque", `const u = new URL("https://e.com/p"); u.protocol = "mailto"; return u.href`, "https://e.com/p"},
		{"URL invalid setter ignored", `const u = new URL("https://e.com/p"); u.port = "abc"; u.hostname = "exa mple"; return u.href`, "https://e.com/p"},
		{"URL search setter refills searchParams", `const u = new URL("https://e.com/p?a=1"); const sp = u.searchParams; u.search = "?b=2&c=3";
			return [...sp.keys()].join() + " " + u.href`, "b,c https://e.com/p?b=2&c=3"},
		{"URL href setter refills searchParams", `const u = new URL("https://e.com/p?a=1"); const sp = u.searchParams; u.href = "https://x.org/?z=9";
			return [...sp.keys()].join() + " " + u.href`, "z https://x.org/?z=9"},
		{"URL searchParams sort and delete", `const u = new URL("https://e.com/p?b=2&a=1&c=3"); u.searchParams.sort(); u.searchParams.delete("b"); return u.href`,
			"https://e.com/p?a=1&c=3"},
		{"URL searchParams identity", `const u = new URL("https://e.com/p"); return u.searchParams instanceof URLSearchParams && u.searchParams === u.searchParams`, true},
		{"URL JSON", `JSON.stringify({u: new URL("https://e.com/x y")})`, `{"u":"https://e.com/x%20y"}`},
		{"URL subclass", `class Api extends URL { get api() { return true; } } const u = new Api("/v1/", "https://e.com"); return u.api + " " + u.href`, "true https://e.com/v1/"},
		{"encoder constructor", `new TextEncoder().constructor === TextEncoder && new TextDecoder() instanceof TextDecoder`, true},
		{"toStringTag", `Object.prototype.toString.call(new TextDecoder())`, "[object TextDecoder]"},
		{"URL searchParams", `new URL("https://e.com/?a=1&a=2&b=%20x").searchParams.getAll("a").join() + "|" + new URL("https://e.com/?b=%20x").searchParams.get("b")`, "1,2| x"},
		{"URL set", `const u = new URL("https://e.com/p"); u.searchParams.set("q", "a b&c"); return u.href`, "https://e.com/p?q=a+b%26c"},
		{"URLSearchParams object", `new URLSearchParams({a: "1", b: "x y"}).toString()`, "a=1&b=x+y"},
		{"URLSearchParams string", `const p = new URLSearchParams("?a=1&b=2"); p.append("c", "3"); p.delete("a"); return p.toString()`, "b=2&c=3"},
		{"URLSearchParams iterate", `[...new URLSearchParams("a=1&b=2")].map(([k, v]) => k + v).join()`, "a1,b2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := runScript(t, rt, "(() => { "+functionBody(tc.expr)+" })()").Export(); got != tc.want {
				t.Fatalf("%s = %#v, want %#v", tc.expr, got, tc.want)
			}
		})
	}
}

// functionBody makes src, a function body or a single expression, the body of a function.
func functionBody(src string) string {
	if strings.Contains(src, "return ") {
		return src
	}
	return "return " + src
}

func TestGlobalsErrors(t *testing.T) {
	rt := scriptRuntime(t)
	tests := []struct {
		expr, want string
	}{
		{`btoa("✓")`, "InvalidCharacterError: btoa: the string to be encoded contains characters outside of the Latin1 range (at index 0)"},
		{`atob("a")`, "InvalidCharacterError: atob: the string to be decoded is not correctly encoded"},
		{`atob("ab!d")`, "InvalidCharacterError: atob: the string to be decoded is not correctly encoded"},
		{`atob("ab=d")`, "InvalidCharacterError: atob: the string to be decoded is not correctly encoded"},
		{`atob("aé==")`, "InvalidCharacterError: atob: the string to be decoded is not correctly encoded"},
		{`atob()`, "TypeError: atob: 1 argument required, but only 0 present"},
		{`btoa()`, "TypeError: btoa: 1 argument required, but only 0 present"},
		{`btoa(Symbol("s"))`, "TypeError: btoa: data: cannot convert a Symbol to a string"},
		{`new TextDecoder("latin1")`, `RangeError: TextDecoder: the encoding "latin1" is not supported; this runtime decodes utf-8 only`},
		{`new TextDecoder("utf-16le")`, `RangeError: TextDecoder: the encoding "utf-16le" is not supported; this runtime decodes utf-8 only`},
		{`new TextDecoder("utf-8", 3)`, "TypeError: TextDecoder: options must be an object"},
		{`new TextDecoder().decode("text")`, "TypeError: TextDecoder.decode: input must be an ArrayBuffer, a typed array or a DataView"},
		{`new TextDecoder().decode([1, 2])`, "TypeError: TextDecoder.decode: input must be an ArrayBuffer, a typed array or a DataView"},
		{`new TextDecoder("utf-8", {fatal: true}).decode(new Uint8Array([0xC3]))`, "TypeError: TextDecoder.decode: the encoded data is not valid utf-8"},
		{`new TextDecoder("utf-8", {fatal: true}).decode(new Uint8Array([0x80]))`, "TypeError: TextDecoder.decode: the encoded data is not valid utf-8"},
		{`TextEncoder()`, "TypeError: Class constructor cannot be invoked without 'new'"},
		{`TextDecoder.call({})`, "TypeError: Class constructor cannot be invoked without 'new'"},
		{`TextEncoder.prototype.encode.call({}, "x")`, "TypeError: Illegal invocation: this is not a TextEncoder"},
		{`TextDecoder.prototype.decode.call(new TextEncoder())`, "TypeError: Illegal invocation: this is not a TextDecoder"},
		{`new TextEncoder().encodeInto("x", [])`, "TypeError: TextEncoder.encodeInto: destination must be a Uint8Array"},
		{`new TextEncoder().encodeInto("x")`, "TypeError: TextEncoder.encodeInto: 2 arguments required, but only 1 present"},
		{`new URL("not a url")`, `TypeError: Invalid URL: "not a url"`},
		{`new URL("https://")`, `TypeError: Invalid URL: "https://"`},
		{`new URL("https://exa mple.com/")`, `TypeError: Invalid URL: "https://exa mple.com/"`},
		{`new URL("https://e.com:99999/")`, `TypeError: Invalid URL: "https://e.com:99999/"`},
		{`new URL("x", "not a base")`, `TypeError: Invalid base URL: "not a base"`},
		{`new URL()`, "TypeError: URL: 1 argument required, but only 0 present"},
		{`URL("https://e.com")`, "TypeError: Class constructor cannot be invoked without 'new'"},
		{`Object.getOwnPropertyDescriptor(URL.prototype, "href").get.call({})`, "TypeError: Illegal invocation: this is not a URL"},
	}
	for _, tc := range tests {
		if got := scriptError(t, rt, tc.expr); got != tc.want {
			t.Errorf("%s threw %q, want %q", tc.expr, got, tc.want)
		}
	}
	// Errors a browser throws as DOMException are still Errors.
	if v := runScript(t, rt, `(() => { try { btoa("✓"); } catch (e) { return e instanceof Error && e.code === 5; } })()`); !v.ToBoolean() {
		t.Error("InvalidCharacterError is not an Error with code 5")
	}
}

func TestGlobalsSurviveReplacedIntrinsics(t *testing.T) {
	rt := scriptRuntime(t)
	got := runScript(t, rt, `globalThis.Uint8Array = function () { throw new Error("replaced"); };
		ArrayBuffer.isView = () => false;
		Array.prototype.join.call(new TextEncoder().encode("ok"))`).String()
	if got != "111,107" {
		t.Fatalf("encode after replacing Uint8Array = %q, want 111,107", got)
	}
}

func TestTextDecoderStreamResetsAfterFlush(t *testing.T) {
	rt := scriptRuntime(t)
	got := runScript(t, rt, `const d = new TextDecoder();
		const a = d.decode(new Uint8Array([0xE2, 0x82]), {stream: true});
		const b = d.decode();
		const c = d.decode(new Uint8Array([0xEF, 0xBB, 0xBF, 0x7A]));
		JSON.stringify([a, b, c])`).String()
	if want := "[\"\",\"\uFFFD\",\"z\"]"; got != want {
		t.Fatalf("decodes %s, want %s", got, want)
	}
}
