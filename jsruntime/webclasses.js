// The web classes script evaluates to a function that builds the URL, TextEncoder and
// TextDecoder classes around Go bindings (see webClassesSource).
(function (parseURL, URLSearchParams, initEncoder, initDecoder) {
  "use strict";
  const records = new WeakMap(); // URL -> parsed record (see parseURL)
  const linked = new WeakMap();  // URL -> its searchParams
  const sp = URLSearchParams.prototype;
  const spAppend = sp.append, spDelete = sp.delete, spKeys = sp.keys, spToString = sp.toString;

  function str(v) {
    if (typeof v === "symbol") throw new TypeError("Cannot convert a Symbol value to a string");
    return String(v);
  }
  function record(url) {
    const r = records.get(url);
    if (r === undefined) throw new TypeError("Illegal invocation: this is not a URL");
    return r;
  }
  function host(r) {
    return r.hostname + (r.port !== "" ? ":" + r.port : "");
  }
  function serialize(r) {
    let s = r.protocol;
    if (r.hasAuthority) {
      s += "//";
      if (r.username !== "" || r.password !== "") {
        s += r.username + (r.password !== "" ? ":" + r.password : "") + "@";
      }
      s += host(r);
    } else if (!r.opaquePath && r.pathname.startsWith("//")) {
      // Without a host, a path that starts with "//" would read as one: the URL standard writes
      // it "/.//", so that the href parses back to the same URL.
      s += "/.";
    }
    return s + r.pathname + r.search + r.hash;
  }
  // update applies change and re-parses; as in browsers, a setter whose value would not make a
  // valid URL (or that accept refuses) changes nothing.
  function update(url, change, accept) {
    const r = record(url);
    let next;
    try {
      next = parseURL(serialize(Object.assign({}, r, change)));
    } catch (e) {
      return;
    }
    if (accept === undefined || accept(next, r)) records.set(url, next);
  }
  // refill makes the searchParams of url (if it has been asked for) list url's query again.
  function refill(url) {
    const params = linked.get(url);
    if (params === undefined) return;
    for (const k of Array.from(spKeys.call(params))) spDelete.call(params, k);
    for (const [k, v] of new URLSearchParams(record(url).search)) spAppend.call(params, k, v);
  }
  // A URL's searchParams is a URLSearchParams whose mutators also write the query back into
  // its URL (goja_nodejs's objects take no own properties, so the override sits on a prototype).
  const owners = new WeakMap(); // searchParams -> URL
  const linkedProto = Object.create(sp);
  for (const name of ["append", "delete", "set", "sort"]) {
    const method = sp[name];
    Object.defineProperty(linkedProto, name, {
      value: { [name]: function () {
        const res = method.apply(this, arguments);
        const url = owners.get(this);
        if (url !== undefined) {
          const q = spToString.call(this);
          update(url, { search: q === "" ? "" : "?" + q });
        }
        return res;
      } }[name],
      writable: true, enumerable: false, configurable: true,
    });
  }
  function hasHost(r) {
    return r.hasAuthority && r.hostname !== "" && r.protocol !== "file:";
  }

  class URL {
    constructor(url, base) {
      if (arguments.length === 0) throw new TypeError("URL: 1 argument required, but only 0 present");
      records.set(this, parseURL(str(url), base === undefined ? undefined : str(base)));
    }
    static canParse(url, base) {
      try {
        parseURL(str(url), base === undefined ? undefined : str(base));
        return true;
      } catch (e) {
        return false;
      }
    }
    get href() { return serialize(record(this)); }
    set href(v) {
      record(this);
      records.set(this, parseURL(str(v)));
      refill(this);
    }
    get origin() {
      const r = record(this);
      return r.special && r.protocol !== "file:" ? r.protocol + "//" + host(r) : "null";
    }
    get protocol() { return record(this).protocol; }
    set protocol(v) {
      const p = str(v).split(":")[0].toLowerCase();
      if (!/^[a-z][a-z0-9+.-]*$/.test(p)) return;
      update(this, { protocol: p + ":" }, (next, prev) => next.special === prev.special);
    }
    get username() { return record(this).username; }
    set username(v) {
      if (hasHost(record(this))) update(this, { username: encodeURIComponent(str(v)) });
    }
    get password() { return record(this).password; }
    set password(v) {
      if (hasHost(record(this))) update(this, { password: encodeURIComponent(str(v)) });
    }
    get host() { return host(record(this)); }
    set host(v) {
      const r = record(this);
      const m = /^(\[[^\]]*\]|[^:\/?#\\]*)(?::(\d*))?/.exec(str(v));
      if (!r.hasAuthority || m[1] === "") return;
      update(this, { hostname: m[1], port: m[2] === undefined || m[2] === "" ? r.port : m[2] });
    }
    get hostname() { return record(this).hostname; }
    set hostname(v) {
      const m = /^(\[[^\]]*\]|[^:\/?#\\]*)/.exec(str(v));
      if (record(this).hasAuthority && m[1] !== "") update(this, { hostname: m[1] });
    }
    get port() { return record(this).port; }
    set port(v) {
      const s = str(v);
      const digits = /^\d*/.exec(s)[0];
      if (!hasHost(record(this)) || (s !== "" && digits === "")) return;
      update(this, { port: digits });
    }
    get pathname() { return record(this).pathname; }
    set pathname(v) {
      const r = record(this);
      if (r.opaquePath) return;
      let p = str(v).replace(/[?#]/g, (c) => (c === "?" ? "%3F" : "%23"));
      if (r.hasAuthority && !p.startsWith("/")) p = "/" + p;
      update(this, { pathname: p });
    }
    get search() { return record(this).search; }
    set search(v) {
      let s = str(v);
      if (s.startsWith("?")) s = s.slice(1);
      update(this, { search: s === "" ? "" : "?" + s.replace(/#/g, "%23") });
      refill(this);
    }
    get searchParams() {
      let params = linked.get(this);
      if (params === undefined) {
        params = new URLSearchParams(record(this).search);
        Object.setPrototypeOf(params, linkedProto);
        owners.set(params, this);
        linked.set(this, params);
      }
      return params;
    }
    get hash() { return record(this).hash; }
    set hash(v) {
      let h = str(v);
      if (h.startsWith("#")) h = h.slice(1);
      update(this, { hash: h === "" ? "" : "#" + h });
    }
    toString() { return serialize(record(this)); }
    toJSON() { return serialize(record(this)); }
  }
  for (const name of ["href", "origin", "protocol", "username", "password", "host", "hostname", "port",
    "pathname", "search", "searchParams", "hash", "toString", "toJSON"]) {
    Object.defineProperty(URL.prototype, name, { enumerable: true });
  }
  Object.defineProperty(URL.prototype, Symbol.toStringTag, { value: "URL", configurable: true });

  class TextEncoder {
    constructor() { initEncoder(this); }
  }
  class TextDecoder {
    constructor() { initDecoder(this, arguments[0], arguments[1]); }
  }
  return { URL, TextEncoder, TextDecoder };
})
