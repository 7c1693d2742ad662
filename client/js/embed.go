// Package js embeds tickgate's browser client, an ES module that pages
// import directly (tickgate.js, its parts and tickgate.d.ts), and the live
// dashboard built on it, so that the tickgate binary can serve them. The
// module and the dashboard are plain JavaScript, HTML and CSS with no
// dependencies and no build step; this package only embeds them, and
// imports nothing of the project.
package js

import (
	"embed"
	"io/fs"
)

//go:embed *.js tickgate.d.ts
var module embed.FS

//go:embed dashboard
var dashboard embed.FS

// Module returns the module's files: tickgate.js, the files it imports and
// tickgate.d.ts, at the top level.
func Module() fs.FS { return module }

// Dashboard returns the dashboard's files (index.html, dashboard.js,
// dashboard.css) at the top level. The dashboard imports the module from
// /client/tickgate.js.
func Dashboard() fs.FS {
	sub, err := fs.Sub(dashboard, "dashboard")
	if err != nil {
		panic(err) // the folder is embedded above
	}
	return sub
}
