// Package assets holds the console's built front-end (index.html, app.js,
// app.css), embedded in the binary: the console loads nothing from
// elsewhere. They are built from web/console by hack/build-console.sh
// (npm ci from the committed lockfile, then esbuild) and committed, so that
// a Go build needs no Node.js; hack/verify-console.sh (run by CI) rebuilds
// them and fails when the committed ones differ (docs/console.md).
package assets

import "embed"

// Dir is the directory of FS that holds the assets.
const Dir = "dist"

// FS holds the built assets under Dir.
//
//go:embed dist
var FS embed.FS
