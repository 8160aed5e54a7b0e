package haproxy

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"
)

func TestEnsureSelfSignedCert(t *testing.T) {
	path := filepath.Join(t.TempDir(), "default.pem")
	created, err := EnsureSelfSignedCert(path)
	if err != nil || !created {
		t.Fatalf("EnsureSelfSignedCert = %v, %v; want created", created, err)
	}
	pemBytes, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// HAProxy's crt wants the certificate and its key in one file: both must load as a pair.
	if _, err := tls.X509KeyPair(pemBytes, pemBytes); err != nil {
		t.Fatalf("the PEM file is not a certificate with its key: %v", err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600 (it holds a private key)", fi.Mode().Perm())
	}
	// An existing file is kept as it is.
	created, err = EnsureSelfSignedCert(path)
	if err != nil || created {
		t.Fatalf("second EnsureSelfSignedCert = %v, %v; want kept", created, err)
	}
	again, _ := os.ReadFile(path)
	if string(again) != string(pemBytes) {
		t.Error("an existing certificate was rewritten")
	}
}
