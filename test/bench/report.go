package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// report gathers one run's figures and renders them as markdown.
type report struct {
	cfg             config
	paths           []*target // paths[0] is the reference, kube-apiserver's SelfSubjectReview
	fixedPaths      []*target
	closed          map[*target][]*result // per round
	fixed           map[*target]*result
	flagpoleVersion string
	revision        string
	kubeVersion     string
	etcdVersion     string
	rss             []string
	profileFile     string
	profileTop      string
	// evaluateProfileFile is the profile under flags/evaluate load, saved
	// and named in the report but not summarised.
	evaluateProfileFile string
	elapsed             time.Duration
}

// ratio is the median over rounds of t's throughput divided by the
// reference's in the same round: both were measured minutes apart at most.
func (r *report) ratio(t *target) float64 {
	ref := r.closed[r.paths[0]]
	var ratios []float64
	for i, res := range r.closed[t] {
		ratios = append(ratios, res.rate()/ref[i].rate())
	}
	return median(ratios)
}

func (r *report) medianRate(t *target) float64 { return medianRateOf(r.closed[t]) }

// medianRateOf is the median throughput of rounds.
func medianRateOf(rounds []*result) float64 {
	var rates []float64
	for _, res := range rounds {
		rates = append(rates, res.rate())
	}
	return median(rates)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// pooled merges a path's rounds, for latency percentiles over all of them.
func pooled(rs []*result) *result {
	all := &result{errs: map[string]int{}}
	for _, r := range rs {
		all.add(r)
	}
	return all
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// errSummary is the error count with what the errors were.
func errSummary(r *result) string {
	n := r.errCount()
	if n == 0 {
		return "0"
	}
	var kinds []string
	for k, v := range r.errs {
		kinds = append(kinds, fmt.Sprintf("%s ×%d", k, v))
	}
	slices.Sort(kinds)
	return fmt.Sprintf("%d (%s)", n, strings.Join(kinds, "; "))
}

// ratioCheck says whether a throughput ratio meets its target, and by how much.
func ratioCheck(got, want float64) string {
	if got >= want {
		return fmt.Sprintf("met (%.0f%% above)", (got/want-1)*100)
	}
	return fmt.Sprintf("**missed**: %.0f%% short (needs %.2f× its throughput)", (1-got/want)*100, want/got)
}

// latencyCheck says whether a latency meets its limit, and by how much.
func latencyCheck(got, limit time.Duration) string {
	if got <= limit {
		return fmt.Sprintf("met (%.0f%% under)", (1-float64(got)/float64(limit))*100)
	}
	return fmt.Sprintf("**missed** by %s (%.2f× the limit)", ms(got-limit), float64(got)/float64(limit))
}

// cpuCheck says whether a CPU time per request is within its limit.
func cpuCheck(got, limit time.Duration) string {
	if got <= limit {
		return fmt.Sprintf("met (%.0f%% under)", (1-float64(got)/float64(limit))*100)
	}
	return fmt.Sprintf("**missed** by %.0f µs (%.2f× the limit)", us(got-limit), float64(got)/float64(limit))
}

func (r *report) markdown() string {
	var b strings.Builder
	cfg := r.cfg
	fmt.Fprintf(&b, "%s; the whole run took %.0f s.\n\n", runLine(time.Now(), r.flagpoleVersion, r.revision, r.kubeVersion, r.etcdVersion), r.elapsed.Seconds())

	fmt.Fprintf(&b, "**Closed loop**: %d workers, one TLS HTTP/1.1 keep-alive connection each; %s warm-up and %s measured per path and round; %d rounds, order rotated. "+
		"× SSR is the median over rounds of the path's throughput divided by SelfSubjectReview's in the same round; p50/p99 over all rounds. "+
		"Server CPU/req is the server process's CPU time (/proc/<pid>/stat) over the answers in the window, all rounds together, and cores how many it kept busy: "+
		"the load generator shares the cores, so throughput ratios understate the difference in server cost, which \"× SSR by CPU\" (SSR's CPU/req divided by the path's) shows.\n\n",
		cfg.workers, cfg.warmup, cfg.measure, cfg.rounds)
	b.WriteString("| Path |")
	for i := range cfg.rounds {
		fmt.Fprintf(&b, " Round %d req/s |", i+1)
	}
	b.WriteString(" req/s (median) | × SSR | p50 | p99 | Errors | Server CPU/req | Server cores | × SSR by CPU |\n|---|")
	b.WriteString(strings.Repeat("---:|", cfg.rounds+8) + "\n")
	refCPU := pooled(r.closed[r.paths[0]]).cpuPerRequest()
	for _, t := range r.paths {
		fmt.Fprintf(&b, "| %s |", t.name)
		for _, res := range r.closed[t] {
			fmt.Fprintf(&b, " %.0f |", res.rate())
		}
		all := pooled(r.closed[t])
		fmt.Fprintf(&b, " %.0f | %.2f× | %s | %s | %s | %.0f µs | %.2f | %.2f× |\n", r.medianRate(t), r.ratio(t),
			ms(percentile(all.lat, 0.5)), ms(percentile(all.lat, 0.99)), errSummary(all),
			us(all.cpuPerRequest()), all.cores(), float64(refCPU)/float64(all.cpuPerRequest()))
	}

	fmt.Fprintf(&b, "\n**Fixed rate**: %d req/s open loop (scheduled on a ticker, one goroutine per request), %s warm-up and %s measured per path. "+
		"Latency from the moment each request is handed to the HTTP client; \"from schedule\" adds the load generator's own timer and scheduling lag.\n\n",
		cfg.rate, cfg.warmup, cfg.rateMeasure)
	b.WriteString("| Path | Achieved req/s | p50 | p99 | p99 from schedule | Errors | Connections | Server CPU/req |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, t := range r.fixedPaths {
		res := r.fixed[t]
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %s | %s | %d | %.0f µs |\n", t.name, res.rate(),
			ms(percentile(res.lat, 0.5)), ms(percentile(res.lat, 0.99)), ms(percentile(res.latSched, 0.99)), errSummary(res), res.conns, us(res.cpuPerRequest()))
	}

	b.WriteString("\n**Targets**\n\n| Target | Measured | Result |\n|---|---:|---|\n")
	for _, t := range r.paths[1:] {
		if t.goal > 0 {
			fmt.Fprintf(&b, "| %s ≥ %.1f× SSR | %.2f× | %s |\n", t.name, t.goal, r.ratio(t), ratioCheck(r.ratio(t), t.goal))
		}
		if t.cpuGoal > 0 {
			got := pooled(r.closed[t]).cpuPerRequest()
			fmt.Fprintf(&b, "| %s server CPU per request ≤ %.0f µs | %.0f µs | %s |\n", t.name, us(t.cpuGoal), us(got), cpuCheck(got, t.cpuGoal))
		}
	}
	ofrepP99 := percentile(r.fixed[r.fixedPaths[1]].lat, 0.99)
	fmt.Fprintf(&b, "| %s p99 at %d req/s ≤ 1 ms | %s | %s |\n", r.fixedPaths[1].name, cfg.rate, ms(ofrepP99), latencyCheck(ofrepP99, time.Millisecond))

	fmt.Fprintf(&b, "\n**Memory** (VmRSS after the run): %s.\n", strings.Join(r.rss, ", "))
	fmt.Fprintf(&b, "\n**Flagpole CPU profile** during %s of OFREP static-flag load (`%s`), top 15 by cumulative time:\n\n```text\n%s\n```\n",
		cfg.profile, r.profileFile, r.profileTop)
	fmt.Fprintf(&b, "\nA profile of as long under flags/evaluate (bearer) load is saved in `%s`.\n", r.evaluateProfileFile)
	return b.String()
}

// runLine says when, on what and of what a run was.
func runLine(at time.Time, flagpoleVersion, revision, kubeVersion, etcdVersion string) string {
	return fmt.Sprintf("%s, %s, etcd %s", hostLine(at, flagpoleVersion, revision), kubeVersion, strings.TrimPrefix(etcdVersion, "etcd Version: "))
}

// hostLine says when, on what and of which Flagpole a run was.
func hostLine(at time.Time, flagpoleVersion, revision string) string {
	return fmt.Sprintf("Run of %s on `%s`, %s, %d cores, %s; Flagpole %s (%s)",
		at.UTC().Format("2006-01-02 15:04 UTC"), machine(), cpuModel(), runtime.NumCPU(), runtime.Version(), flagpoleVersion, revision)
}

func machine() string {
	out, err := exec.Command("uname", "-m").Output()
	if err != nil {
		return runtime.GOARCH
	}
	return strings.TrimSpace(string(out))
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// updateDocs replaces what lies between the markers of bench (<!--
// bench:<bench>:begin --> and <!-- bench:<bench>:end -->) in path with
// section and leaves the rest of the file as it is; without the markers it
// appends them under a heading of their own.
func updateDocs(path, bench, section string) error {
	beginMarker, endMarker := "<!-- bench:"+bench+":begin -->", "<!-- bench:"+bench+":end -->"
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	doc := string(old)
	block := beginMarker + "\n" + section + endMarker
	i, j := strings.Index(doc, beginMarker), strings.Index(doc, endMarker)
	switch {
	case i >= 0 && j > i:
		doc = doc[:i] + block + doc[j+len(endMarker):]
	case i >= 0 || j >= 0:
		return fmt.Errorf("%s: only one of %s and %s, or out of order", path, beginMarker, endMarker)
	default:
		if doc == "" {
			doc = "# Benchmarks\n"
		}
		doc = strings.TrimRight(doc, "\n") + "\n\n## " + strings.ToUpper(bench[:1]) + bench[1:] + "\n\n" + block + "\n"
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}
