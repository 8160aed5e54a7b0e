package discovery

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A client with TLSClientConfig of a server's CA reaches it; a missing file and a file with no
// PEM certificate are errors naming the file.
func TestTLSClientConfig(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, block, 0o600); err != nil {
		t.Fatal(err)
	}
	conf, err := TLSClientConfig(ca)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: conf}}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatalf("a client trusting the bundle: %v", err)
	}
	resp.Body.Close()

	noPEM := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(noPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		noPEM:                          "CA bundle " + noPEM + " holds no PEM certificate",
		filepath.Join(dir, "gone.pem"): "CA bundle: open " + filepath.Join(dir, "gone.pem"),
	} {
		if _, err := TLSClientConfig(file); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", file, err, want)
		}
	}
}
