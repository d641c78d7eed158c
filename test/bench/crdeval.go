package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"

	"github.com/flagpole-dev/flagpole/test/process"
)

// delegatedEvaluation is the crd bench's evaluation phase with -bearer:
// Flagpole in delegated mode, clients holding a ServiceAccount token, so
// that every Flagpole request is authenticated by a TokenReview and
// authorized by a SubjectAccessReview against kube-apiserver (both cached,
// as upstream's delegated options do), the way the harness ran.
type delegatedEvaluation struct {
	paths  []*target // paths[0] is kube-apiserver's SelfSubjectReview
	closed map[*target][]*result
}

// runDelegatedEvaluation measures SelfSubjectReview on kube-apiserver and
// flags/evaluate and OFREP on Flagpole direct, all with the same token,
// in rounds with the order rotated, as the evaluation bench does.
func runDelegatedEvaluation(ctx context.Context, cfg config, kubeCfg, direct *rest.Config, dir *apiPath, kubeProc, fpProc *process.Process) (*delegatedEvaluation, error) {
	const flag = "eval-static"
	if _, err := dir.flags(nsRounds).Create(ctx, &unstructured.Unstructured{Object: dir.object(flag)}, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("the flag the evaluation phase evaluates: %w", err)
	}
	kubeTLS, err := rest.TLSConfigFor(kubeCfg)
	if err != nil {
		return nil, err
	}
	fpTLS, err := rest.TLSConfigFor(direct)
	if err != nil {
		return nil, err
	}
	ssr := &target{
		name: "kube-apiserver SelfSubjectReview (ServiceAccount token)", want: http.StatusCreated,
		url: strings.TrimSuffix(kubeCfg.Host, "/") + "/apis/authentication.k8s.io/v1/selfsubjectreviews",
		tls: kubeTLS, bearer: kubeCfg.BearerToken, server: kubeProc,
		body: []byte(`{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`),
	}
	evaluate := &target{
		name: "flags/evaluate direct (ServiceAccount token)", want: http.StatusCreated, keyed: true,
		url: strings.TrimSuffix(direct.Host, "/") + "/apis/flagpole.dev/v1beta1/namespaces/" + nsRounds + "/flags/" + flag + "/evaluate",
		tls: fpTLS, bearer: direct.BearerToken, server: fpProc, goal: 2,
	}
	ofrep := &target{
		name: "OFREP single direct (ServiceAccount token)", want: http.StatusOK, keyed: true,
		url: strings.TrimSuffix(direct.Host, "/") + "/namespaces/" + nsRounds + "/ofrep/v1/evaluate/flags/" + flag,
		tls: fpTLS, bearer: direct.BearerToken, server: fpProc,
	}
	ev := &delegatedEvaluation{paths: []*target{ssr, evaluate, ofrep}, closed: map[*target][]*result{}}
	if err := waitAnswering(ctx, ev.paths); err != nil {
		return nil, err
	}
	for round := range cfg.rounds {
		for i := range ev.paths {
			t := ev.paths[(i+round)%len(ev.paths)]
			r := closedLoop(ctx, t, cfg.workers, cfg.warmup, cfg.measure)
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			ev.closed[t] = append(ev.closed[t], r)
			logf("evaluation round %d  %-56s %8.0f req/s  p99 %s  errors %s  server %.0f µs CPU/req",
				round+1, t.name, r.rate(), ms(percentile(r.lat, 0.99)), errSummary(r), us(r.cpuPerRequest()))
		}
	}
	return ev, nil
}

// ratio is the median over rounds of t's throughput divided by
// SelfSubjectReview's in the same round.
func (ev *delegatedEvaluation) ratio(t *target) float64 {
	var ratios []float64
	for i, r := range ev.closed[t] {
		ratios = append(ratios, r.rate()/ev.closed[ev.paths[0]][i].rate())
	}
	return median(ratios)
}

// markdown is the phase's table: throughput, × SSR (the median over rounds
// of the round's ratio), server CPU per request and × SSR by CPU.
func (ev *delegatedEvaluation) markdown() string {
	var b strings.Builder
	b.WriteString("\n**Evaluation with a ServiceAccount token, delegated** (TokenReview and SubjectAccessReview against kube-apiserver, cached; the same closed loop as the evaluation bench; kube-apiserver and Flagpole share the two cores, and kube-apiserver also answers Flagpole's reviews when they miss the cache):\n\n")
	b.WriteString("| Path | req/s (median) | × SSR | p99 | Errors | Server CPU/req | × SSR by CPU |\n|---|---:|---:|---:|---:|---:|---:|\n")
	ref := ev.paths[0]
	refCPU := pooled(ev.closed[ref]).cpuPerRequest()
	for _, t := range ev.paths {
		all := pooled(ev.closed[t])
		fmt.Fprintf(&b, "| %s | %.0f | %.2f× | %s | %s | %.0f µs | %.2f× |\n", t.name, medianRateOf(ev.closed[t]), ev.ratio(t),
			ms(percentile(all.lat, 0.99)), errSummary(all), us(all.cpuPerRequest()), float64(refCPU)/float64(all.cpuPerRequest()))
	}
	for _, t := range ev.paths[1:] {
		if t.goal > 0 {
			fmt.Fprintf(&b, "\nTarget: %s ≥ %.1f× SSR: %.2f×, %s.\n", t.name, t.goal, ev.ratio(t), ratioCheck(ev.ratio(t), t.goal))
		}
	}
	return b.String()
}
