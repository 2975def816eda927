package mtasts_test

import (
	"errors"
	"fmt"

	"github.com/tlsup/tlsup/smtp/mtasts"
)

func ExampleParse() {
	p, err := mtasts.Parse("version: STSv1\nmode: enforce\nmx: *.example.net\nmax_age: 604800\n")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Mode, p.MaxAge)
	for _, host := range []string{"mx1.example.net", "example.net", "a.mx1.example.net"} {
		fmt.Println(host, p.Match(host))
	}
	// Output:
	// enforce 168h0m0s
	// mx1.example.net true
	// example.net false
	// a.mx1.example.net false
}

func ExamplePolicy_TLSConfig() {
	p := &mtasts.Policy{Mode: mtasts.Enforce, MX: []string{"*.example.net"}}
	cfg, _, err := p.TLSConfig("mx1.example.net", nil)
	fmt.Println(cfg.ServerName, cfg.InsecureSkipVerify, err)
	_, _, err = p.TLSConfig("mx.attacker.test", nil)
	fmt.Println(errors.Is(err, mtasts.ErrMXMismatch))
	// Output:
	// mx1.example.net false <nil>
	// true
}
