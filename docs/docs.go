// Package docs embeds the documentation the server itself serves.
package docs

import _ "embed"

// ErrorsMarkdown is docs/errors.md, served as HTML at /docs/errors: the page
// every doc_url points into.
//
//go:embed errors.md
var ErrorsMarkdown []byte

// WebhooksMarkdown is docs/webhooks.md, served as HTML at /docs/webhooks.
//
//go:embed webhooks.md
var WebhooksMarkdown []byte

// CommandsMarkdown is docs/commands.md, served as HTML at /docs/commands.
//
//go:embed commands.md
var CommandsMarkdown []byte
