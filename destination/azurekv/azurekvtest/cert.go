package azurekvtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"time"
)

// hostNames are the names the server's certificate is valid for: the
// vaults and the Microsoft Entra authority hosts of the Azure public,
// China and US Government clouds, so that a client that dials the server
// for any of them (see Server.HTTPClient) verifies the certificate as it
// would Azure's.
var hostNames = []string{
	"*.vault.azure.net", "*.vault.azure.cn", "*.vault.usgovcloudapi.net",
	"login.microsoftonline.com", "login.windows.net", "login.microsoft.com",
	"login.chinacloudapi.cn", "login.partner.microsoftonline.cn",
	"login.microsoftonline.us", "login.usgovcloudapi.net",
	"localhost",
}

// newCertificate returns a self-signed certificate for hostNames and the
// loopback addresses, made fresh for each server.
func newCertificate(now time.Time) (tls.Certificate, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"azurekvtest"}, CommonName: "azurekvtest"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              hostNames,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, leaf, nil
}
