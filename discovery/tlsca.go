package discovery

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// TLSClientConfig is a client TLS configuration (TLS 1.2 or later) that trusts the system's
// CAs and those of the PEM bundle caFile, for Marathon and Mesos behind a company CA. The
// error names the file.
func TLSClientConfig(caFile string) (*tls.Config, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("CA bundle: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA bundle %s holds no PEM certificate", caFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
