//go:build hostile

package hostile

import (
	"os"
	"strings"
)

// FLAGPOLE_HOSTILE_CONTROL_ARGS adds server flags to the slow-body test,
// e.g. "--pre-read-body-bytes=0 --request-body-read-timeout=0
// --enable-priority-and-fairness=false" to see it fail against the server
// as it was before issue 16.
func init() {
	if v := os.Getenv("FLAGPOLE_HOSTILE_CONTROL_ARGS"); v != "" {
		slowBodyArgs = strings.Fields(v)
	}
}
