package console

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// The browser is given a file that forwards it to the URL, never the URL:
// a command line is readable by every local user (ps), the file only by
// this one, and it is removed when the console stops.
func TestOpenBrowserKeepsTheSecretOffCommandLines(t *testing.T) {
	dir := t.TempDir()
	seen := filepath.Join(dir, "seen")
	browser := filepath.Join(dir, "browser")
	// A "browser" that records its arguments, the page it was given and its mode.
	script := "#!/bin/sh\ncp \"$1\" " + seen + ".page\nstat -c %a \"$1\" > " + seen + ".mode\necho \"$@\" > " + seen + ".args\n"
	if err := os.WriteFile(browser, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BROWSER", browser)
	const url = "http://127.0.0.1:1234/#secret=s3cr3t-value"
	cleanup, err := openBrowser(url)
	if err != nil {
		t.Fatal(err)
	}
	var args []byte
	if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		args, err = os.ReadFile(seen + ".args")
		return err == nil, nil
	}); err != nil {
		t.Fatalf("the browser was not started: %v", err)
	}
	page, _ := os.ReadFile(seen + ".page")
	mode, _ := os.ReadFile(seen + ".mode")
	if strings.Contains(string(args), "s3cr3t") {
		t.Errorf("the secret is on the browser's command line: %s", args)
	}
	if !strings.Contains(string(page), `content="0;url=`+url+`"`) {
		t.Errorf("the page does not send the browser on to the console:\n%s", page)
	}
	if strings.TrimSpace(string(mode)) != "600" {
		t.Errorf("the page is mode %s, want 600", mode)
	}
	opened := strings.TrimSpace(string(args))
	cleanup()
	if _, err := os.Stat(opened); !os.IsNotExist(err) {
		t.Errorf("the page %s outlives the console: %v", opened, err)
	}
}
