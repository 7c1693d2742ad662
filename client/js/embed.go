// Package js embeds tickgate's browser client, an ES module that pages
// import directly (tickgate.js, its parts and tickgate.d.ts), so that the
// tickgate binary can serve it. The module itself is plain JavaScript with
// no dependencies and no build step; this package only embeds it, and
// imports nothing of the project.
package js

import (
	"embed"
	"io/fs"
)

//go:embed *.js tickgate.d.ts
var module embed.FS

// Module returns the module's files: tickgate.js, the files it imports and
// tickgate.d.ts, at the top level.
func Module() fs.FS { return module }
