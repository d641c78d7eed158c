// Package answers reads the answers flagd gives for pkg/flagd's test flag
// files (pkg/flagd/testdata/*-expected.json: each written down from flagd's
// sources, tests and documentation, as its source says), for the tests
// that check imported flags against them: pkg/flagd's, with the engine,
// and test/pluginsuite's, through the server.
package answers

import (
	"encoding/json"
	"fmt"
	"os"
)

// Case is one context of one flag and flagd's answer.
type Case struct {
	Flag    string         `json:"flag"`
	Context map[string]any `json:"context"`
	// Variant is nil where flagd answers the caller's default.
	Variant   *string `json:"variant"`
	Reason    string  `json:"reason"`
	ErrorCode string  `json:"errorCode"`
	// Source says where the answer comes from; Note where sources disagree.
	Source string `json:"source"`
	Note   string `json:"note"`
	// Fractional, when set (v1 or v2), is the bucketing the answer is for.
	Fractional string `json:"fractional"`
	// Type is the type the caller asks for, when the case checks it.
	Type string `json:"type"`
}

// Load reads the cases of one *-expected.json file.
func Load(path string) ([]Case, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Cases []Case `json:"cases"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return doc.Cases, nil
}
