module github.com/tlsup/tlsup/examples/handoff

go 1.26.0

require (
	github.com/emersion/go-imap/v2 v2.0.0-beta.8
	github.com/emersion/go-sasl v0.0.0-20241020182733-b788ff22d5a6
	github.com/emersion/go-smtp v0.26.0
	github.com/stretchr/testify v1.12.1
	github.com/tlsup/tlsup v0.0.0
)

require (
	github.com/emersion/go-message v0.18.2 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/text v0.43.0 // indirect
)

replace github.com/tlsup/tlsup => ../..
