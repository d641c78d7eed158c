package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	ofrepapi "github.com/flagpole-dev/flagpole/pkg/ofrep"
)

// The hostile-input corpus: every finding of issue 7 plus seeded mutations
// of a valid request, sent to every write endpoint of a real
// flagpole-apiserver process. Each request must get an HTTP answer (no
// dropped connection) below 500 within corpusRequestTimeout, and the server
// must never log a panic or, under -race, a data race. The findings must
// also be refused (4xx); a mutation may be accepted, as long as it is
// answered.
//
// The server runs as a child process (startBinary) so that its log is its
// own: the in-process framework server shares klog with every test.
//
// FLAGPOLE_CORPUS_SEED picks another seed for the mutations; a failure
// prints the seed and the case to reproduce it.

const (
	corpusNS   = "corpus"
	corpusBase = "/apis/flagpole.dev/v1beta1/namespaces/" + corpusNS
	// corpusRequestTimeout bounds what one request may cost; a request
	// still unanswered then fails like a dropped connection.
	corpusRequestTimeout = 30 * time.Second
	// mutationsPerEndpoint bounds the run: 21 endpoints (OFREP included), about 660 requests
	// with the findings, 10-20 s on two cores (about a minute under -race).
	mutationsPerEndpoint = 30
)

const (
	jsonType      = "application/json"
	mergePatch    = "application/merge-patch+json"
	strategicType = "application/strategic-merge-patch+json"
	jsonPatch     = "application/json-patch+json"
	applyPatch    = "application/apply-patch+yaml"
)

// Seeds: valid requests, one per endpoint. Each is sent unchanged first and
// must succeed, so that the mutations start from something the endpoint
// accepts (a typo in a path would otherwise make every case a quiet 404).
const (
	seedFlag = `{"apiVersion":"flagpole.dev/v1beta1","kind":"Flag","metadata":{"name":"target","labels":{"team":"checkout"}},
	"spec":{"description":"corpus","type":"Boolean","state":"Enabled",
	"variants":[{"name":"on","value":true},{"name":"off","value":false}],"defaultVariant":"off",
	"rules":[{"name":"staff","segments":["target"],"when":"has(context.plan) && context.plan == \"enterprise\"","variant":"on"},
	{"name":"gradual","rollout":{"bucketBy":"context.targetingKey","distribution":[{"variant":"on","weight":10},{"variant":"off","weight":90}]}}],
	"owner":"team-corpus","expiresAt":"2030-01-01T00:00:00Z"}}`
	seedFlagStatus = `{"apiVersion":"flagpole.dev/v1beta1","kind":"Flag","metadata":{"name":"target"},
	"spec":{"type":"Boolean","variants":[{"name":"on","value":true},{"name":"off","value":false}],"defaultVariant":"off"},
	"status":{"observedGeneration":1,"conditions":[{"type":"Ready","status":"True","reason":"Valid","message":"ok","lastTransitionTime":"2026-01-01T00:00:00Z","observedGeneration":1}]}}`
	seedSegment = `{"apiVersion":"flagpole.dev/v1beta1","kind":"Segment","metadata":{"name":"target"},
	"spec":{"description":"corpus","when":"has(context.email) && context.email.endsWith(\"@example.com\")","include":["tester-1"],"exclude":["tester-2"]}}`
	seedOverride = `{"apiVersion":"flagpole.dev/v1beta1","kind":"FlagOverride","metadata":{"name":"target"},
	"spec":{"flag":"target","variant":"on","targetingKeys":["user-1","user-2"],"ttl":"30m"}}`
	seedEvaluate    = `{"context":{"targetingKey":"user-1","plan":"free","n":1.5,"tags":["a"]},"type":"Boolean"}`
	seedOFREP       = `{"context":{"targetingKey":"user-1","plan":"free","n":1.5,"tags":["a"]}}`
	seedEvaluations = `{"apiVersion":"flagpole.dev/v1beta1","kind":"Evaluation",
	"spec":{"context":{"targetingKey":"user-1","plan":"free"},"flags":["target","missing"],"selector":{"matchLabels":{"team":"checkout"}}}}`
	seedFlagMerge     = `{"metadata":{"labels":{"team":"corpus"}},"spec":{"description":"patched","variants":[{"name":"on","value":true},{"name":"off","value":false}],"rules":[]}}`
	seedFlagStrategic = `{"spec":{"description":"patched","variants":[{"name":"on","value":true}],"$setElementOrder/variants":[{"name":"on"},{"name":"off"}]}}`
	seedFlagJSONPatch = `[{"op":"replace","path":"/spec/description","value":"patched"},{"op":"add","path":"/metadata/labels/x","value":"y"},{"op":"test","path":"/spec/type","value":"Boolean"}]`
	seedSegmentMerge  = `{"spec":{"include":["tester-3"],"description":"patched"}}`
	seedOverrideMerge = `{"spec":{"targetingKeys":["user-3"],"variant":"off"}}`
	seedStatusMerge   = `{"status":{"observedGeneration":1}}`
)

// corpusEndpoint is one way to write: a method, a path and a content type,
// with a valid request to start from.
type corpusEndpoint struct {
	name, method, path, contentType, seed string
	// create: the unchanged seed is sent with another metadata.name, so
	// that it creates a new object.
	create bool
}

var corpusEndpoints = []corpusEndpoint{
	{name: "create flag", method: "POST", path: "/flags", contentType: jsonType, seed: seedFlag, create: true},
	{name: "create flag dryRun", method: "POST", path: "/flags?dryRun=All", contentType: jsonType, seed: seedFlag, create: true},
	{name: "update flag", method: "PUT", path: "/flags/target", contentType: jsonType, seed: seedFlag},
	{name: "merge-patch flag", method: "PATCH", path: "/flags/target", contentType: mergePatch, seed: seedFlagMerge},
	{name: "strategic-patch flag", method: "PATCH", path: "/flags/target", contentType: strategicType, seed: seedFlagStrategic},
	{name: "json-patch flag", method: "PATCH", path: "/flags/target", contentType: jsonPatch, seed: seedFlagJSONPatch},
	{name: "apply flag", method: "PATCH", path: "/flags/target?fieldManager=corpus&force=true", contentType: applyPatch, seed: seedFlag},
	{name: "update flag status", method: "PUT", path: "/flags/target/status", contentType: jsonType, seed: seedFlagStatus},
	{name: "merge-patch flag status", method: "PATCH", path: "/flags/target/status", contentType: mergePatch, seed: seedStatusMerge},
	{name: "evaluate", method: "POST", path: "/flags/target/evaluate", contentType: jsonType, seed: seedEvaluate},
	{name: "evaluations", method: "POST", path: "/evaluations", contentType: jsonType, seed: seedEvaluations},
	{name: "OFREP single", method: "POST", path: ofrepapi.PathPrefix + corpusNS + "/ofrep/v1/evaluate/flags/target", contentType: jsonType, seed: seedOFREP},
	{name: "OFREP bulk", method: "POST", path: ofrepapi.PathPrefix + corpusNS + "/ofrep/v1/evaluate/flags", contentType: jsonType, seed: seedOFREP},
	{name: "create segment", method: "POST", path: "/segments", contentType: jsonType, seed: seedSegment, create: true},
	{name: "update segment", method: "PUT", path: "/segments/target", contentType: jsonType, seed: seedSegment},
	{name: "merge-patch segment", method: "PATCH", path: "/segments/target", contentType: mergePatch, seed: seedSegmentMerge},
	{name: "apply segment", method: "PATCH", path: "/segments/target?fieldManager=corpus&force=true", contentType: applyPatch, seed: seedSegment},
	{name: "create flagoverride", method: "POST", path: "/flagoverrides", contentType: jsonType, seed: seedOverride, create: true},
	{name: "update flagoverride", method: "PUT", path: "/flagoverrides/target", contentType: jsonType, seed: seedOverride},
	{name: "merge-patch flagoverride", method: "PATCH", path: "/flagoverrides/target", contentType: mergePatch, seed: seedOverrideMerge},
	{name: "apply flagoverride", method: "PATCH", path: "/flagoverrides/target?fieldManager=corpus&force=true", contentType: applyPatch, seed: seedOverride},
}

// corpusCase is one request and what its answer must be.
type corpusCase struct {
	name              string
	method, path, ct  string
	body              []byte
	mustRefuse        bool // a finding of issue 7: a 4xx, never a 2xx
	timeoutSecondsArg bool // a watch: the server ends it
}

func TestHostileInputCorpus(t *testing.T) {
	t.Parallel()
	seed := uint64(7)
	if s := os.Getenv("FLAGPOLE_CORPUS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("FLAGPOLE_CORPUS_SEED=%q: %v", s, err)
		}
	}
	server := startBinary(t, buildServer(t))
	cfg := rest.CopyConfig(server.Config)
	cfg.Timeout = corpusRequestTimeout
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}

	// Each case's request carries its own audit ID, which the server puts in
	// the line it logs for a recovered panic: a panic is blamed on the case
	// that caused it, however late the line is written.
	caseOf := map[string]string{}
	send := func(c corpusCase) (code int, body []byte, elapsed time.Duration, err error) {
		ctx, cancel := context.WithTimeout(context.Background(), corpusRequestTimeout)
		defer cancel()
		url := cfg.Host + corpusBase + c.path
		if strings.HasPrefix(c.path, ofrepapi.PathPrefix) {
			url = cfg.Host + c.path // OFREP lives beside the API, not under it
		}
		req, err := http.NewRequestWithContext(ctx, c.method, url, bytes.NewReader(c.body))
		if err != nil {
			return 0, nil, 0, err
		}
		if c.ct != "" {
			req.Header.Set("Content-Type", c.ct)
		}
		if c.name != "" {
			id := fmt.Sprintf("corpus-%d", len(caseOf))
			caseOf[id] = c.name
			req.Header.Set("Audit-ID", id)
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, time.Since(start), err
		}
		defer resp.Body.Close()
		body, err = io.ReadAll(resp.Body)
		return resp.StatusCode, body, time.Since(start), err
	}

	// The targets of updates, patches and evaluations, created by the seeds;
	// then every seed unchanged must succeed.
	for _, p := range []struct{ path, body string }{{"/segments", seedSegment}, {"/flags", seedFlag}, {"/flagoverrides", seedOverride}} {
		if code, body, _, err := send(corpusCase{method: "POST", path: p.path, ct: jsonType, body: []byte(p.body)}); err != nil || code != http.StatusCreated {
			t.Fatalf("create target %s: %d %s %v", p.path, code, body, err)
		}
	}
	for i, e := range corpusEndpoints {
		c := corpusCase{name: "unchanged seed of " + e.name, method: e.method, path: e.path, ct: e.contentType, body: []byte(e.seed)}
		if e.create {
			c.body = []byte(strings.Replace(e.seed, `"name":"target"`, fmt.Sprintf(`"name":"seed-%d"`, i), 1))
		}
		if code, body, _, err := send(c); err != nil || code/100 != 2 {
			t.Errorf("%s: the unchanged seed must succeed: %d %s %v", e.name, code, truncateBody(body), err)
		}
	}

	cases := append(findingCases(), mutationCases(t, seed)...)
	var slowest time.Duration
	var slowestName string
	refused, accepted := 0, 0
	for _, c := range cases {
		if c.timeoutSecondsArg {
			c.path += "&timeoutSeconds=1"
		}
		code, body, elapsed, err := send(c)
		if elapsed > slowest {
			slowest, slowestName = elapsed, c.name
		}
		switch {
		case err != nil:
			t.Errorf("seed %d, %s: no answer (dropped connection or over %s): %v", seed, c.name, corpusRequestTimeout, err)
		case code >= 500:
			t.Errorf("seed %d, %s: %d %s", seed, c.name, code, truncateBody(body))
		case c.mustRefuse && code/100 != 4:
			t.Errorf("seed %d, %s: %d, want a 4xx: %s", seed, c.name, code, truncateBody(body))
		case code/100 == 4:
			refused++
		default:
			accepted++
		}
	}
	t.Logf("seed %d: %d cases, %d refused, %d accepted; slowest %s (%s)", seed, len(cases), refused, accepted, slowest.Round(time.Millisecond), slowestName)

	// The server is still serving, and never panicked or raced.
	if code, body, _, err := send(corpusCase{method: "GET", path: "/flags/target"}); err != nil || code != http.StatusOK {
		t.Errorf("after the corpus, GET flags/target: %d %s %v", code, truncateBody(body), err)
	}
	if server.exited() {
		t.Errorf("the server exited: %v", server.waitErr)
	}
	checkPanics(t, seed, server.Log.String(), caseOf)
}

var panickedAuditID = regexp.MustCompile(`"apiserver panic'd".* auditID="([^"]*)"`)

// checkPanics fails the test for every case the log blames a recovered
// panic on, and for any other panic or data race in the log (a panic that
// escaped to net/http, "http2: panic serving", names no request). The first
// excerpt is printed in full for diagnosis.
func checkPanics(t *testing.T, seed uint64, log string, caseOf map[string]string) {
	t.Helper()
	lines := strings.Split(log, "\n")
	blamed, excerpt := map[string]bool{}, ""
	for i, line := range lines {
		lower := strings.ToLower(line)
		if !strings.Contains(lower, "panic") && !strings.Contains(line, "DATA RACE") {
			continue
		}
		if excerpt == "" {
			excerpt = strings.Join(lines[max(0, i-5):min(len(lines), i+40)], "\n")
		}
		if m := panickedAuditID.FindStringSubmatch(line); m != nil && !blamed[m[1]] {
			blamed[m[1]] = true
			name, ok := caseOf[m[1]]
			if !ok {
				name = "a request outside the corpus (audit ID " + m[1] + ")"
			}
			t.Errorf("seed %d, %s: the server panicked", seed, name)
		}
	}
	if excerpt == "" {
		return
	}
	if len(blamed) == 0 {
		t.Errorf("the server log has a panic or a data race:\n%s", excerpt)
		return
	}
	t.Logf("the first panic in the server log:\n%s", excerpt)
}

func truncateBody(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

// findingCases are the hostile inputs issue 7 found, each of which must be
// refused with a 4xx.
func findingCases() []corpusCase {
	var cases []corpusCase
	refuse := func(name, method, path, ct, body string) {
		cases = append(cases, corpusCase{name: "finding: " + name, method: method, path: path, ct: ct, body: []byte(body), mustRefuse: true})
	}
	flagWith := func(name, typ, variants string, meta string) string {
		return `{"apiVersion":"flagpole.dev/v1beta1","kind":"Flag","metadata":{"name":"` + name + `"` + meta + `},"spec":{"type":"` + typ +
			`","variants":[` + variants + `],"defaultVariant":"v0"}}`
	}
	// Numbers no float64 holds, as a variant value and in a context.
	for _, n := range []string{`1e400`, `-1e400`, `1e309`, `{"a":1e400}`, `[1e400]`} {
		typ := "Float"
		switch n[0] {
		case '{':
			typ = "Object"
		case '[':
			typ = "Object" // an array is no Object value either way: still a 4xx
		}
		variant := `{"name":"v0","value":` + n + `}`
		refuse("create flag with variant value "+n, "POST", "/flags", jsonType, flagWith("out-of-range", typ, variant, ""))
		refuse("dry-run create flag with variant value "+n, "POST", "/flags?dryRun=All", jsonType, flagWith("out-of-range", typ, variant, ""))
		refuse("update flag with variant value "+n, "PUT", "/flags/target", jsonType, flagWith("target", typ, variant, ""))
		refuse("update flag status with variant value "+n, "PUT", "/flags/target/status", jsonType, flagWith("target", typ, variant, ""))
		refuse("evaluations with context value "+n, "POST", "/evaluations", jsonType,
			`{"apiVersion":"flagpole.dev/v1beta1","kind":"Evaluation","spec":{"context":{"n":`+n+`}}}`)
		refuse("evaluate with context value "+n, "POST", "/flags/target/evaluate", jsonType, `{"context":{"n":`+n+`}}`)
	}
	refuse("evaluate with targetingKey 1e400", "POST", "/flags/target/evaluate", jsonType, `{"context":{"targetingKey":1e400}}`)
	refuse("strategic merge patch with a bad $setElementOrder", "PATCH", "/flags/target", strategicType, `{"spec":{"$setElementOrder/variants":[{"x":1}]}}`)

	// Larger than etcd accepts: refused before storage with a 4xx.
	big := `"` + strings.Repeat("x", 28<<10) + `"`
	for _, n := range []int{56, 100} {
		var vs []string
		for i := range n {
			vs = append(vs, fmt.Sprintf(`{"name":"v%d","value":%s}`, i, big))
		}
		refuse(fmt.Sprintf("create flag with %d variants of 28 KiB", n), "POST", "/flags", jsonType, flagWith("huge", "String", strings.Join(vs, ","), ""))
	}
	keys := make([]string, 10000)
	for i := range keys {
		keys[i] = fmt.Sprintf(`"%0256d"`, i)
	}
	refuse("create segment with 10,000 keys of 256 bytes", "POST", "/segments", jsonType,
		`{"apiVersion":"flagpole.dev/v1beta1","kind":"Segment","metadata":{"name":"huge"},"spec":{"include":[`+strings.Join(keys, ",")+`]}}`)

	bool2 := `{"name":"v0","value":true},{"name":"v1","value":false}`
	refuse("create with metadata.resourceVersion", "POST", "/flags", jsonType, flagWith("with-rv", "Boolean", bool2, `,"resourceVersion":"1"`))
	refuse("update with resourceVersion abc", "PUT", "/flags/target", jsonType, flagWith("target", "Boolean", bool2, `,"resourceVersion":"abc"`))
	cases = append(cases, corpusCase{name: "finding: watch with resourceVersion=abc", method: "GET", path: "/flags?watch=1&resourceVersion=abc", mustRefuse: true, timeoutSecondsArg: true})
	refuse("server-side apply with an unknown field", "PATCH", "/flags/target?fieldManager=corpus", applyPatch,
		`{"apiVersion":"flagpole.dev/v1beta1","kind":"Flag","metadata":{"name":"target"},"spec":{"type":"Boolean","unknownField":1}}`)
	refuse("Object variant nested 9,990 levels", "POST", "/flags", jsonType,
		flagWith("deep", "Object", `{"name":"v0","value":`+nested(9990, true)+`}`, ""))

	// Answered, not necessarily refused: a null context is no context.
	cases = append(cases, corpusCase{name: "finding: evaluate with context null", method: "POST", path: "/flags/target/evaluate", ct: jsonType, body: []byte(`{"context":null}`), mustRefuse: true})
	return cases
}

// nested is depth levels of objects ({"a":...}) or arrays around 1.
func nested(depth int, objects bool) string {
	if objects {
		return strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth)
	}
	return strings.Repeat("[", depth) + "1" + strings.Repeat("]", depth)
}

// Mutation kinds, taken in turn so that each gets an equal share.
var mutationKinds = []string{"truncate", "swap type", "extreme number", "deep nesting", "invalid UTF-8"}

var (
	// Values of every JSON type, for type swaps.
	swapValues = []string{`"x"`, `""`, `0`, `-1`, `true`, `false`, `null`, `[]`, `{}`, `["a",1]`, `{"a":"b"}`}
	// Numbers at and beyond the edges of int32, int64, uint64 and float64.
	extremeNumbers = []string{`1e400`, `-1e400`, `1e309`, `-1e309`, `1e-400`, `5e-324`, `-0`, `0.0000000000000000000000001`,
		`2147483648`, `-2147483649`, `9223372036854775807`, `9223372036854775808`, `-9223372036854775809`,
		`18446744073709551616`, `1e999999999`, `123456789012345678901234567890`, `1.7976931348623157e308`}
	nestingDepths = []int{64, 1000, 9990, 10001, 100000}
	// Bytes that are not UTF-8: a lone continuation byte, 0xff, a truncated
	// sequence, an encoded surrogate, an overlong NUL, and a real NUL.
	invalidUTF8 = []string{"\x80", "\xff\xfe", "\xc3", "\xed\xa0\x80", "\xc0\x80", "\x00"}
)

// mutationCases derives mutationsPerEndpoint requests per endpoint from its
// seed with a generator seeded by seed: the same seed, the same requests.
func mutationCases(t *testing.T, seed uint64) []corpusCase {
	rng := rand.New(rand.NewPCG(seed, 0x666c6167706f6c65))
	var cases []corpusCase
	for _, e := range corpusEndpoints {
		var doc any
		d := json.NewDecoder(strings.NewReader(e.seed))
		d.UseNumber()
		if err := d.Decode(&doc); err != nil {
			t.Fatalf("%s: seed is not JSON: %v", e.name, err)
		}
		paths := jsonPaths(doc, nil)
		seedBytes := encodeJSON(doc)
		for i := range mutationsPerEndpoint {
			kind := mutationKinds[i%len(mutationKinds)]
			path := paths[rng.IntN(len(paths))]
			var body []byte
			var what string
			switch kind {
			case "truncate":
				n := rng.IntN(len(seedBytes))
				body, what = seedBytes[:n], fmt.Sprintf("at byte %d", n)
			case "swap type":
				v := swapValues[rng.IntN(len(swapValues))]
				body, what = encodeJSON(replaceAt(doc, path, rawJSON(v))), fmt.Sprintf("%s := %s", pathString(path), v)
			case "extreme number":
				v := extremeNumbers[rng.IntN(len(extremeNumbers))]
				body, what = encodeJSON(replaceAt(doc, path, rawJSON(v))), fmt.Sprintf("%s := %s", pathString(path), v)
			case "deep nesting":
				depth, objects := nestingDepths[rng.IntN(len(nestingDepths))], rng.IntN(2) == 0
				body = encodeJSON(replaceAt(doc, path, rawJSON(nested(depth, objects))))
				what = fmt.Sprintf("%s := %d levels (objects: %v)", pathString(path), depth, objects)
			case "invalid UTF-8":
				// Inside a string (a key or a value): right after an opening
				// or closing quote.
				quotes := quotePositions(seedBytes)
				at := quotes[rng.IntN(len(quotes))] + 1
				bad := invalidUTF8[rng.IntN(len(invalidUTF8))]
				body = slices.Concat(seedBytes[:at], []byte(bad), seedBytes[at:])
				what = fmt.Sprintf("%q at byte %d", bad, at)
			}
			cases = append(cases, corpusCase{
				name:   fmt.Sprintf("%s, mutation %d (%s %s)", e.name, i, kind, what),
				method: e.method, path: e.path, ct: e.contentType, body: body,
			})
		}
	}
	return cases
}

// rawJSON is written into a document as it is: numbers no Go type holds,
// deep nesting.
type rawJSON string

// encodeJSON writes a decoded document back, with map keys in order, and
// rawJSON verbatim.
func encodeJSON(v any) []byte {
	var b bytes.Buffer
	var enc func(any)
	enc = func(v any) {
		switch v := v.(type) {
		case rawJSON:
			b.WriteString(string(v))
		case map[string]any:
			b.WriteByte('{')
			for i, k := range slices.Sorted(maps.Keys(v)) {
				if i > 0 {
					b.WriteByte(',')
				}
				enc(k)
				b.WriteByte(':')
				enc(v[k])
			}
			b.WriteByte('}')
		case []any:
			b.WriteByte('[')
			for i, e := range v {
				if i > 0 {
					b.WriteByte(',')
				}
				enc(e)
			}
			b.WriteByte(']')
		default:
			out, err := json.Marshal(v)
			if err != nil {
				panic(err)
			}
			b.Write(out)
		}
	}
	enc(v)
	return b.Bytes()
}

// jsonPaths lists the path to every value in v, v itself included.
func jsonPaths(v any, prefix []any) [][]any {
	paths := [][]any{slices.Clone(prefix)}
	switch v := v.(type) {
	case map[string]any:
		// In key order: map order is random, and the seeded choice must not be.
		for _, k := range slices.Sorted(maps.Keys(v)) {
			paths = append(paths, jsonPaths(v[k], append(prefix, k))...)
		}
	case []any:
		for i, e := range v {
			paths = append(paths, jsonPaths(e, append(prefix, i))...)
		}
	}
	return paths
}

// replaceAt returns a copy of v with the value at path replaced by with.
func replaceAt(v any, path []any, with any) any {
	if len(path) == 0 {
		return with
	}
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = e
		}
		k := path[0].(string)
		out[k] = replaceAt(v[k], path[1:], with)
		return out
	case []any:
		out := slices.Clone(v)
		i := path[0].(int)
		out[i] = replaceAt(v[i], path[1:], with)
		return out
	}
	panic(fmt.Sprintf("path %v goes through a leaf", path))
}

func pathString(path []any) string {
	if len(path) == 0 {
		return "(the whole body)"
	}
	var b strings.Builder
	for _, p := range path {
		switch p := p.(type) {
		case string:
			b.WriteString("." + p)
		case int:
			fmt.Fprintf(&b, "[%d]", p)
		}
	}
	return b.String()
}

func quotePositions(b []byte) []int {
	var at []int
	for i, c := range b {
		if c == '"' {
			at = append(at, i)
		}
	}
	return at
}
