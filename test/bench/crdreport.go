package main

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// ratioToCRD is the median over rounds of p's rate divided by the CRD's in
// the same round.
func (r *crdRun) ratioToCRD(res map[*apiPath][]*result, p *apiPath) float64 {
	ref := res[r.paths[0]]
	var ratios []float64
	for i, x := range res[p] {
		ratios = append(ratios, x.rate()/ref[i].rate())
	}
	return median(ratios)
}

// listTime is the median time of a LIST, 0 if it was not answered with 200.
func listTime(l *listResult) time.Duration {
	if l == nil || l.status != http.StatusOK || len(l.times) == 0 {
		return 0
	}
	return percentile(l.times, 0.5)
}

// growth is after-before, or -1 when either is unknown.
func growth(before, after int64) int64 {
	if before == -1 || after == -1 {
		return -1
	}
	return after - before
}

// shareCheck says whether a ratio that should stay at or under limit does.
func shareCheck(got, limit float64) string {
	if got <= limit {
		return fmt.Sprintf("met (%.0f%% under)", (1-got/limit)*100)
	}
	return fmt.Sprintf("**missed**: %.2f× the limit (needs %.0f%% less)", got/limit, (1-limit/got)*100)
}

func (r *crdRun) markdown(cfg config) string {
	var b strings.Builder
	crd := r.paths[0]
	fmt.Fprintf(&b, "%s; this bench took %.0f s.\n\n", runLine(r.started, r.flagpoleVersion, r.revision, r.kubeVersion, r.etcdVersion), r.elapsed.Seconds())
	fmt.Fprintf(&b, "**Setup**: %s. **× CRD** is against the %s (`-crd-peer %s`), the first row; the other CRDs are rows of the same run.\n\n", r.setup, crd.kind.name, crd.kind.id)
	fmt.Fprintf(&b, "**Writes and reads**: %d rounds of %d creates per path, then a GET and an update (PUT of the object read) of each; %d client-go workers; order of the paths rotated each round. "+
		"Rates are the median over rounds; × CRD the median over rounds of the path's rate divided by the CRD's in the same round; p50/p99 over all rounds. "+
		"etcd writes per create: the revision of the etcd that stores the path's objects, over a round of creates once the server settled (no change for 1 s), divided by the creates.\n\n",
		cfg.crdRounds, cfg.crdObjects, cfg.workers)
	b.WriteString("| Path | creates/s | × CRD | p50 | p99 | gets/s | × CRD | p50 | p99 | updates/s | × CRD | p50 | p99 | etcd writes per create | Errors |\n|---|" + strings.Repeat("---:|", 14) + "\n")
	for _, p := range r.paths {
		fmt.Fprintf(&b, "| %s |", p.name)
		errs := 0
		for _, res := range []map[*apiPath][]*result{r.creates, r.gets, r.updates} {
			all := pooled(res[p])
			errs += all.errCount()
			fmt.Fprintf(&b, " %.0f | %.2f× | %s | %s |", medianRateOf(res[p]), r.ratioToCRD(res, p), ms(percentile(all.lat, 0.5)), ms(percentile(all.lat, 0.99)))
		}
		fmt.Fprintf(&b, " %.2f | %d |\n", median(r.writesPerCreate[p]), errs)
	}
	b.WriteString("\n**CPU per create** (µs, median over rounds): each process's CPU time from /proc over a round of creates until its store settled, divided by the creates. " +
		"On two cores the sum bounds the rate; it says where a path's time goes.\n\n| Path |")
	names := r.cpuNames()
	for _, n := range names {
		fmt.Fprintf(&b, " %s |", n)
	}
	b.WriteString(" Total |\n|---|" + strings.Repeat("---:|", len(names)+1) + "\n")
	for _, p := range r.paths {
		fmt.Fprintf(&b, "| %s |", p.name)
		var total time.Duration
		for i := range names {
			var v []float64
			for _, round := range r.createCPU[p] {
				if round[i] >= 0 {
					v = append(v, float64(round[i]))
				}
			}
			if len(v) == 0 {
				b.WriteString(" ? |")
				continue
			}
			d := time.Duration(median(v))
			total += d
			fmt.Fprintf(&b, " %.0f |", us(d))
		}
		fmt.Fprintf(&b, " %.0f |\n", us(total))
	}
	b.WriteString("\nCreates/s by round (the order of the paths rotates):\n\n| Path |")
	for i := range cfg.crdRounds {
		fmt.Fprintf(&b, " %d |", i+1)
	}
	b.WriteString("\n|---|" + strings.Repeat("---:|", cfg.crdRounds) + "\n")
	for _, p := range r.paths {
		fmt.Fprintf(&b, "| %s |", p.name)
		for _, x := range r.creates[p] {
			fmt.Fprintf(&b, " %.0f |", x.rate())
		}
		b.WriteString("\n")
	}

	crdJSON := listTime(r.lists[crd][mediaJSON])
	fmt.Fprintf(&b, "\n**LIST of %d objects** in one namespace, no paging, median of %d after one untimed; × faster is the CRD's JSON LIST time divided by the row's. "+
		"kube-apiserver serves custom resources in JSON only, so the CRD's JSON LIST is the baseline of the protobuf target.\n\n", cfg.listObjects, cfg.listReps)
	b.WriteString("| Path | Accept | Status | Size | Time | × faster than the CRD's JSON |\n|---|---|---:|---:|---:|---:|\n")
	for _, p := range r.paths {
		if p.typed != nil || r.lists[p] == nil {
			continue
		}
		for _, media := range []string{mediaJSON, mediaProtobuf} {
			l := r.lists[p][media]
			t, faster := "—", "—"
			if d := listTime(l); d > 0 {
				t = ms(d)
				faster = fmt.Sprintf("%.2f×", float64(crdJSON)/float64(d))
			}
			fmt.Fprintf(&b, "| %s | `%s` | %d | %.1f MB | %s | %s |\n", p.name, media, l.status, float64(l.bytes)/1e6, t, faster)
		}
	}

	fmt.Fprintf(&b, "\n**Watch fan-out**: %d watchers per path (client-go, 50 to a connection) on one object; %d writes (a merge patch of an annotation), each timed from just before the write until the last watcher has its event. "+
		"The watchers decode every event in the bench's process, on the same cores: JSON is the dynamic client's, protobuf Flagpole's generated clientset's (kube-apiserver serves custom resources in JSON only). × CRD is the CRD's p50 divided by the row's.\n\n", cfg.watchers, cfg.watchWrites)
	b.WriteString("| Path | Watchers decode | Writes seen by all | p50 | p99 | × CRD | Events missed (30 s) |\n|---|---|---:|---:|---:|---:|---:|\n")
	crdFan := percentile(r.fanout[crd], 0.5)
	fanRow := func(p *apiPath, how string, lat []time.Duration, missed int) {
		fmt.Fprintf(&b, "| %s | %s | %d of %d | %s | %s | %.2f× | %d |\n", p.name, how, len(lat), cfg.watchWrites, ms(percentile(lat, 0.5)), ms(percentile(lat, 0.99)),
			float64(crdFan)/float64(max(percentile(lat, 0.5), 1)), missed)
	}
	for _, p := range r.paths {
		how := "JSON"
		if p.typed != nil {
			how = "protobuf"
		}
		fanRow(p, how, r.fanout[p], r.fanoutMissed[p])
	}

	fmt.Fprintf(&b, "\n**Memory** on the fresh cluster, before the rounds: kube-apiserver's growth for %d CRs against Flagpole's for %d flags created direct (each server stores only its own). "+
		"RSS is VmRSS from /proc/<pid>/status once the writes settled; heap in use is go_memstats_heap_inuse_bytes from /metrics right after a forced GC (GET /debug/pprof/heap?gc=1), the steadier figure; live is go_memstats_alloc_bytes at the same moment, the live objects' bytes: heap in use less live heap is fragmentation.\n\n", cfg.listObjects, cfg.listObjects)
	b.WriteString("| Server | Objects | RSS before | RSS after | RSS growth | × kube-apiserver's | Heap before | Heap after | Heap growth | × kube-apiserver's | Live heap growth | × kube-apiserver's |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	kubeRSS, kubeHeap, kubeLive := growth(r.mem[0].rssBefore, r.mem[0].rssAfter), growth(r.mem[0].heapBefore, r.mem[0].heapAfter), growth(r.mem[0].liveBefore, r.mem[0].liveAfter)
	for _, m := range r.mem {
		rss, heap, live := growth(m.rssBefore, m.rssAfter), growth(m.heapBefore, m.heapAfter), growth(m.liveBefore, m.liveAfter)
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", m.server, m.objects,
			mib(m.rssBefore), mib(m.rssAfter), mibDelta(rss), share(rss, kubeRSS), mib(m.heapBefore), mib(m.heapAfter), mibDelta(heap), share(heap, kubeHeap),
			mibDelta(live), share(live, kubeLive))
	}
	for _, m := range r.mem {
		if m.heapErr != "" {
			fmt.Fprintf(&b, "\nHeap of %s not read: %s\n", m.server, m.heapErr)
		}
	}

	b.WriteString("\n**Evaluation**: ")
	if r.evaluation != nil && len(r.evaluation.paths) > 1 {
		t := r.evaluation.paths[1]
		fmt.Fprintf(&b, "%s, in the evaluation bench of the same run: %.0f req/s, %.2f× kube-apiserver's SelfSubjectReview (see the evaluation section). A CRD has no evaluation: an application reading a CRD flag evaluates it itself.\n",
			t.name, r.evaluation.medianRate(t), r.evaluation.ratio(t))
	} else {
		b.WriteString("not run in this invocation; `hack/bench.sh` without arguments runs the evaluation bench first and quotes its OFREP figure here (see the evaluation section).\n")
	}

	if r.delegated != nil {
		b.WriteString(r.delegated.markdown())
	}

	b.WriteString("\n**Targets**\n\n| Target | Measured | Result |\n|---|---:|---|\n")
	agg, dir := r.paths[1], r.paths[2]
	targets := []struct {
		p    *apiPath
		want float64
	}{{agg, 1.2}, {dir, 2.0}}
	if len(r.paths) >= 5 {
		targets = append(targets, []struct {
			p    *apiPath
			want float64
		}{{r.paths[3], 1.2}, {r.paths[4], 2.0}}...)
	}
	for _, t := range targets {
		got := r.ratioToCRD(r.creates, t.p)
		fmt.Fprintf(&b, "| creates/s, %s ≥ %.1f× the %s | %.2f× | %s |\n", t.p.name, t.want, crd.kind.name, got, ratioCheck(got, t.want))
	}
	if fpRSS := growth(r.mem[1].rssBefore, r.mem[1].rssAfter); fpRSS >= 0 && kubeRSS > 0 {
		got := float64(fpRSS) / float64(kubeRSS)
		fmt.Fprintf(&b, "| RSS growth for %d flags ≤ ½ kube-apiserver's for %d %s objects | %.2f× | %s |\n", cfg.listObjects, cfg.listObjects, crd.kind.name, got, shareCheck(got, 0.5))
	}
	for _, p := range []*apiPath{agg, dir} {
		l := r.lists[p][mediaProtobuf]
		if d := listTime(l); d > 0 {
			got := float64(crdJSON) / float64(d)
			fmt.Fprintf(&b, "| protobuf LIST of %d, %s ≥ 3× faster than the CRD's JSON LIST | %.2f× | %s |\n", cfg.listObjects, p.name, got, ratioCheck(got, 3))
		} else {
			fmt.Fprintf(&b, "| protobuf LIST of %d, %s ≥ 3× faster than the CRD's JSON LIST | status %d | **missed**: no protobuf answer |\n", cfg.listObjects, p.name, l.status)
		}
	}
	if r.heapFile != "" {
		fmt.Fprintf(&b, "\n**Flagpole heap** after the %d flags (`%s`, `go tool pprof -top`, in-use space), top 20:\n\n```text\n%s\n```\n", cfg.listObjects, r.heapFile, r.heapTop)
	}
	return b.String()
}

// share is part as a multiple of whole, or "?" when either is unknown.
func share(part, whole int64) string {
	if part == -1 || whole <= 0 {
		return "?"
	}
	return fmt.Sprintf("%.2f×", float64(part)/float64(whole))
}
