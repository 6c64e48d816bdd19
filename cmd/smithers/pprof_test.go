package main

import "testing"

func TestPprofAddrKeepsBarePortsOnLoopback(t *testing.T) {
	for in, want := range map[string]string{
		"6060":         "127.0.0.1:6060",
		":6060":        "127.0.0.1:6060",
		"0.0.0.0:6060": "0.0.0.0:6060",
		"[::1]:6060":   "[::1]:6060",
	} {
		if got := pprofAddr(in); got != want {
			t.Errorf("pprofAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
