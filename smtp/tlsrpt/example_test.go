package tlsrpt_test

import (
	"encoding/json"
	"fmt"
	"net/netip"

	"github.com/tlsup/tlsup/smtp/tlsrpt"
	"github.com/tlsup/tlsup/starttls"
)

func ExampleDetails() {
	// What smtp.Dial returned for a server that does not offer STARTTLS.
	res := &starttls.Result{Protocol: "smtp", Greeting: "mx1.example.net ESMTP"}
	err := &starttls.Error{Protocol: "smtp", Step: starttls.StepDiscover, Kind: starttls.ErrNotOffered}
	d := tlsrpt.Details(tlsrpt.Session{
		MXHost:   "mx1.example.net",
		RemoteIP: netip.MustParseAddr("192.0.2.25"),
		Result:   res,
		Err:      err,
	})
	out, _ := json.MarshalIndent(d, "", "  ")
	fmt.Println(string(out))
	// Output:
	// {
	//   "result-type": "starttls-not-supported",
	//   "receiving-mx-hostname": "mx1.example.net",
	//   "receiving-mx-helo": "mx1.example.net",
	//   "receiving-ip": "192.0.2.25",
	//   "failed-session-count": 1,
	//   "additional-information": "smtp: discover: not offered"
	// }
}
