package main

import (
	"encoding/json"
	"io/fs"
	"net/http"
	"path"
	"strings"

	tickgatejs "github.com/tickgate/tickgate/client/js"
	"github.com/tickgate/tickgate/gateway"
)

// dashboardConfig is what the dashboard page reads from
// /dashboard/config.json.
type dashboardConfig struct {
	// Mode is "dev" (the token comes in the URL fragment that dev prints)
	// or "serve" (the page asks for one).
	Mode string `json:"mode"`
	// Symbols are the symbols the page shows at first; empty: the page's
	// own default, editable.
	Symbols []string `json:"symbols"`
	// WebSocketPath is the path of the WebSocket endpoint on the same host.
	WebSocketPath string `json:"ws"`
}

// dashboardHandler serves the live dashboard of issue 9 on the public
// listener: the page at /, its files under /dashboard/, the browser module
// it is built on under /client/ (so that other pages may import
// /client/tickgate.js too, also from another origin), and everything else
// 404. The gateway routes its WebSocket endpoint past it (it is
// gateway.Config.Fallback).
func dashboardHandler(cfg dashboardConfig) http.Handler {
	cfg.WebSocketPath = gateway.WebSocketPath
	conf, err := json.Marshal(cfg)
	if err != nil {
		panic(err) // a struct of strings
	}
	module := http.FileServerFS(tickgatejs.Module())
	files := http.FileServerFS(tickgatejs.Dashboard())
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		dashboardHeaders(w, r)
		http.ServeFileFS(w, r, tickgatejs.Dashboard(), "index.html")
	})
	mux.HandleFunc("GET /dashboard/config.json", func(w http.ResponseWriter, r *http.Request) {
		dashboardHeaders(w, r)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(conf)
	})
	mux.HandleFunc("GET /dashboard/{file}", func(w http.ResponseWriter, r *http.Request) {
		if !servable(tickgatejs.Dashboard(), r.PathValue("file")) {
			http.NotFound(w, r)
			return
		}
		dashboardHeaders(w, r)
		http.StripPrefix("/dashboard", files).ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /client/{file}", func(w http.ResponseWriter, r *http.Request) {
		f := r.PathValue("file")
		if !servable(tickgatejs.Module(), f) {
			http.NotFound(w, r)
			return
		}
		dashboardHeaders(w, r)
		// Module scripts load in CORS mode: a page of another origin may
		// import the module from the node. It is public code, served
		// without credentials.
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if strings.HasSuffix(f, ".d.ts") {
			// Not video/mp2t, which is what .ts means to mime.types.
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		}
		http.StripPrefix("/client", module).ServeHTTP(w, r)
	})
	return mux
}

// servable reports whether name is a plain file of fsys (no folder
// listings, no index.html redirects).
func servable(fsys fs.FS, name string) bool {
	if name == "" || name != path.Base(name) || strings.HasPrefix(name, ".") {
		return false
	}
	st, err := fs.Stat(fsys, name)
	return err == nil && st.Mode().IsRegular()
}

// dashboardHeaders sets what every dashboard response carries: the page
// may load only its own files and open WebSockets only to its own host;
// it is never framed, never sends a Referer, and is revalidated on every
// load so that a new binary's files are not mixed with an old one's.
func dashboardHeaders(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	host := r.Host
	csp := "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'; connect-src 'self'"
	if host != "" && !strings.ContainsAny(host, " ;'\"\r\n") {
		csp += " wss://" + host + " ws://" + host
	}
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
}
