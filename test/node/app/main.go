// Command flagpole-app is the application the real-node e2e (test/node) runs
// in a Pod: it evaluates one flag over OFREP through Flagpole's Service, with
// its ServiceAccount token, as an OpenFeature OFREP provider does, and
// prints a JSON line each time the answer changes (and for each failure),
// for the test to read from its log. It stops by itself after -duration.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// answer is what the app reports: OFREP's success and failure bodies share
// these fields.
type answer struct {
	Key       string          `json:"key"`
	Value     json.RawMessage `json:"value,omitempty"`
	Variant   string          `json:"variant,omitempty"`
	Reason    string          `json:"reason,omitempty"`
	ErrorCode string          `json:"errorCode,omitempty"`
	Status    int             `json:"status"`
	Error     string          `json:"error,omitempty"`
}

func main() {
	var (
		base      = flag.String("base-url", "https://api.flagpole-system.svc", "Flagpole's Service")
		namespace = flag.String("namespace", "", "the flags' namespace (default: the Pod's own)")
		key       = flag.String("flag", "", "flag to evaluate (required)")
		caFile    = flag.String("ca", "/var/run/flagpole/ca.crt", "CA of Flagpole's serving certificate")
		tokenFile = flag.String("token", "/var/run/secrets/kubernetes.io/serviceaccount/token", "bearer token (the ServiceAccount's, re-read on every request: the kubelet rotates it)")
		interval  = flag.Duration("interval", 500*time.Millisecond, "time between evaluations")
		duration  = flag.Duration("duration", 10*time.Minute, "stop after this long")
		target    = flag.String("targeting-key", "flagpole-app", "the evaluation context's targetingKey")
	)
	flag.Parse()
	if *key == "" {
		fmt.Fprintln(os.Stderr, "flagpole-app: -flag is required")
		os.Exit(2)
	}
	if *namespace == "" {
		ns, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
		if err != nil {
			fmt.Fprintln(os.Stderr, "flagpole-app: -namespace not given and no ServiceAccount namespace:", err)
			os.Exit(2)
		}
		*namespace = strings.TrimSpace(string(ns))
	}
	client, err := newClient(*caFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "flagpole-app:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()

	url := fmt.Sprintf("%s/namespaces/%s/ofrep/v1/evaluate/flags/%s", strings.TrimSuffix(*base, "/"), *namespace, *key)
	body, _ := json.Marshal(map[string]any{"context": map[string]any{"targetingKey": *target}})
	out := json.NewEncoder(os.Stdout)
	var last string
	ticker := time.NewTicker(*interval)
	defer ticker.Stop()
	for {
		a := evaluate(ctx, client, url, *tokenFile, body)
		// One line per distinct answer: a change, or a failure that differs
		// from the one before.
		line, _ := json.Marshal(a)
		if string(line) != last {
			_ = out.Encode(a)
			last = string(line)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func newClient(caFile string) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no certificate", caFile)
	}
	return &http.Client{
		Timeout: 5 * time.Second,
		// HTTP/2 as Go's default transport negotiates it (GOAWAY when a
		// replica shuts down).
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true},
	}, nil
}

func evaluate(ctx context.Context, client *http.Client, url, tokenFile string, body []byte) answer {
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		return answer{Error: err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return answer{Error: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := client.Do(req)
	if err != nil {
		return answer{Error: err.Error()}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	a := answer{Status: resp.StatusCode}
	if err != nil {
		a.Error = err.Error()
		return a
	}
	if err := json.Unmarshal(data, &a); err != nil {
		a.Error = fmt.Sprintf("not OFREP JSON: %.200s", data)
	}
	return a
}
