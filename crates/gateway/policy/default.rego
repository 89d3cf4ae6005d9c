# Countersign reference gateway: default classification policy.
#
# Every request an agent submits is evaluated here and answered with exactly one decision:
#
#   data.countersign.decision == {
#     "outcome": "allow" | "deny" | "step_up",
#     "id": "<rule id>",
#     "reason": "<a sentence the approver reads>",
#     "tier": "low" | "medium" | "high" | "critical",   # step_up only
#     "approvals_required": 1..5,                       # step_up only
#   }
#
# How it decides
#   1. Denials: requests nobody should be asked to approve (untrusted workload, restricted data leaving
#      the company for an unvetted place, ...). Any denial wins.
#   2. Findings: every rule that sees a risk adds a finding {rank, approvals, id, reason}. The step-up
#      takes the tier of the riskiest finding and the largest quorum of all findings, so a harmless
#      first action can never hide a dangerous second one.
#   3. Otherwise the request is allowed (reads of public/internal data, reversible work outside production).
#
# The agent's declarations are only trusted upwards: the effective data class is the highest of what the
# agent declares, what the system catalogue below says about the target system, and what the declared
# data categories imply. An agent cannot make a request look less sensitive than it is.

package countersign

import rego.v1

# ---------------------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------------------

# SPIFFE trust domains whose workloads may submit requests at all.
trusted_trust_domains := {"acme.example"}

# DNS domains that belong to us; any other destination host is external.
internal_domains := {"acme.example", "acme.internal", "localhost"}

# External processors under contract (DPA signed, security reviewed). Sending sensitive data there still
# needs a person, but it is not refused outright.
approved_processors := {
	"sftp.payroll-partner.example",
	"api.tax-filing.example",
	"upload.backup-vault.example",
}

# What we know about our systems, whatever an agent says. Unknown systems get the declared class.
catalogue := {
	"payments-api": "restricted",
	"ledger": "restricted",
	"billing": "restricted",
	"hr-db": "restricted",
	"vault": "restricted",
	"iam": "restricted",
	"okta": "restricted",
	"crm": "confidential",
	"support-desk": "confidential",
	"accounts": "confidential",
	"orders-db": "confidential",
	"data-warehouse": "confidential",
	"k8s-prod": "internal",
	"deploy": "internal",
	"mail": "internal",
	"wiki": "internal",
	"jira": "internal",
	"analytics": "internal",
	"status-page": "public",
	"docs-site": "public",
	"blog": "public",
}

# Data categories set a floor on the class: personal data is at least confidential; card, health and
# secret material is restricted.
category_floor := {
	"pii": "confidential",
	"financial": "confidential",
	"pci": "restricted",
	"phi": "restricted",
	"secrets": "restricted",
	"credentials": "restricted",
	"biometric": "restricted",
}

# Environments that are not production. Anything else (including a typo) is treated as production.
non_production := {"dev", "development", "test", "testing", "qa", "staging", "sandbox", "preview", "local"}

# Distinct approvers needed for critical requests.
critical_quorum := 2

# ---------------------------------------------------------------------------------------------------------
# Vocabulary. Tool and operation names are split into lower-case words on . _ - / : and spaces, so
# "payments.pay_invoice" is {"payments", "pay", "invoice"}.
# ---------------------------------------------------------------------------------------------------------

read_verbs := {
	"get", "read", "list", "search", "query", "fetch", "describe", "view", "lookup", "find", "show",
	"retrieve", "select", "count", "inspect", "status",
}

# A word from this list makes an action a change even if it also carries a read verb.
write_verbs := {
	"create", "update", "delete", "remove", "put", "post", "patch", "write", "set", "send", "reply",
	"forward", "insert", "drop", "alter", "truncate", "rotate", "revoke", "grant", "assign", "deploy",
	"export", "upload", "pay", "transfer", "refund", "erase", "purge", "destroy", "publish", "sync", "share",
	"merge", "apply", "execute", "exec", "migrate", "disable", "enable",
}

money_verbs := {
	"pay", "payout", "payouts", "transfer", "transfers", "wire", "disburse", "disbursement", "remit",
	"remittance",
}

refund_words := {"refund", "refunds"}

secret_words := {
	"secret", "secrets", "vault", "kms", "credential", "credentials", "password", "passwords", "apikey",
	"certificate", "certificates", "cert", "certs",
}

schema_words := {"migrate", "migration", "migrations", "truncate", "ddl"}

schema_verbs := {"drop", "alter"}

schema_objects := {"table", "tables", "column", "columns", "schema", "database", "index", "collection"}

iam_words := {
	"iam", "role", "roles", "rolebinding", "rolebindings", "permission", "permissions", "privilege",
	"privileges", "acl",
}

admin_markers := {"admin", "owner", "root", "superuser", "*"}

role_keys := {"role", "roles", "permission", "permissions", "group", "groups"}

deploy_words := {"deploy", "deployment", "rollout", "release", "promote"}

export_verbs := {"export", "upload", "share", "sync", "dump", "push", "copy", "replicate"}

mail_words := {"mail", "email", "gmail", "smtp", "outlook", "exchange", "sendgrid"}

mail_verbs := {"send", "reply", "forward"}

# Argument names that hold where data goes.
destination_keys := {
	"url", "endpoint", "destination", "webhook", "webhook_url", "uri", "host", "bucket", "target_url",
	"remote",
}

# Argument names that hold SQL.
sql_keys := {"sql", "query", "statement", "ddl", "script"}

sql_mutations := {"INSERT", "UPDATE", "DELETE", "DROP", "ALTER", "TRUNCATE", "GRANT", "REVOKE", "CREATE", "MERGE"}

sql_schema_objects := {"TABLE", "SCHEMA", "DATABASE", "COLUMN", "INDEX", "VIEW"}

# ---------------------------------------------------------------------------------------------------------
# The decision
# ---------------------------------------------------------------------------------------------------------

# Fail closed: if nothing below can be evaluated, the request is refused.
default decision := {
	"outcome": "deny",
	"id": "no-decision",
	"reason": "The policy could not classify this request, so it is refused.",
}

decision := {"outcome": "deny", "id": d.id, "reason": d.reason} if {
	d := first_denial
} else := {
	"outcome": "step_up",
	"id": top[3],
	"reason": top[4],
	"tier": tier_names[top[0]],
	"approvals_required": max({f.approvals | some f in findings}),
} if {
	count(findings) > 0
	top := max({[f.rank, f.approvals, f.specificity, f.id, f.reason] | some f in findings})
} else := {
	"outcome": "allow",
	"id": "low-risk-production",
	"reason": "Every action only reads public or internal data, which agents may do without approval.",
} if {
	production
} else := {
	"outcome": "allow",
	"id": "reversible-outside-production",
	"reason": sprintf("Every action is reversible and runs outside production (%s), so no approval is needed.", [environment]),
} if {
	not production
}

# Ranks of tiers; rank 0 means "no human needed".
tier_names := ["none", "low", "medium", "high", "critical"]

first_denial := sort([d | some d in denials; d.priority == best])[0] if {
	best := min({d.priority | some d in denials})
}

# ---------------------------------------------------------------------------------------------------------
# Denials
# ---------------------------------------------------------------------------------------------------------

denials contains {
	"priority": 1,
	"id": "workload-not-spiffe",
	"reason": "The agent did not authenticate with a SPIFFE workload identity, so nobody can tell who is acting.",
} if {
	not startswith(input.workload, "spiffe://")
}

denials contains {
	"priority": 2,
	"id": "untrusted-trust-domain",
	"reason": sprintf("The workload belongs to the SPIFFE trust domain \"%s\", which this gateway does not trust.", [trust_domain]),
} if {
	startswith(input.workload, "spiffe://")
	not trust_domain in trusted_trust_domains
}

denials contains {
	"priority": 3,
	"id": "identity-mismatch",
	"reason": "The workload named in the request is not the one that authenticated; an agent may only ask for itself.",
} if {
	input.identity.workload != input.workload
}

denials contains {
	"priority": 4,
	"id": "empty-action-chain",
	"reason": "The request proposes no actions, so there is nothing to approve.",
} if {
	count(input.actions) == 0
}

denials contains {
	"priority": 5,
	"id": "restricted-data-leaving",
	"reason": "Restricted data may only leave the company for an approved processor; this destination is external and not approved.",
} if {
	effective_rank == class_rank.restricted
	some a in input.actions
	is_export(a)
	unapproved_external(a)
}

# ---------------------------------------------------------------------------------------------------------
# Findings. Each is finding(rank, approvals, id, reason) with rank 1 low, 2 medium, 3 high, 4 critical.
# Findings that apply in every environment come first: data leaving, look-alike names, mail in a person's name.
# ---------------------------------------------------------------------------------------------------------

# Look-alike names: a Cyrillic "р" in "рayments" renders like "payments" but is another tool.
findings contains finding(4, critical_quorum, "lookalike-name", lookalike_reason) if {
	some a in input.actions
	some name in action_names(a)
	not plain_name(name)
}

findings contains finding(4, critical_quorum, "lookalike-name", lookalike_reason) if {
	not plain_name(input.target.system)
}

lookalike_reason := concat(" ", [
	"A tool, operation or system name contains characters other than plain ASCII letters, digits and . _ - / :,",
	"which can make one tool look like another; two approvers must confirm what it really is.",
])

# Confidential or restricted data to an outside destination that is not an approved processor
# (restricted data there is denied above; this also covers confidential data and personal data).
findings contains f if {
	effective_rank >= class_rank.confidential
	some a in input.actions
	is_export(a)
	unapproved_external(a)
	f := finding(4, critical_quorum, "sensitive-export-external", sprintf(
		"The agent wants to send %s data to a destination outside the company that is not an approved processor; two approvers must agree that it may leave.",
		[effective_class]
	))
}

# To an approved processor: high, or critical for restricted data.
findings contains f if {
	effective_rank >= class_rank.confidential
	some a in input.actions
	is_export(a)
	external_destination(a)
	not unapproved_external(a)
	[rank, approvals] := processor_risk
	f := finding(rank, approvals, "sensitive-export-processor", sprintf(
		"The agent wants to send %s data to an approved external processor; an approver confirms that this transfer is expected.",
		[effective_class]
	))
}

processor_risk := [4, critical_quorum] if {
	effective_rank == class_rank.restricted
} else := [3, 1]

# Mail in a person's name, in any environment (mail from staging still reaches real people): the
# recipients will believe the person wrote it. Medium, or high when the data is confidential or above.
findings contains f if {
	count(input.identity.on_behalf_of) > 0
	some a in input.actions
	is_mail_send(a)
	f := finding(mail_rank, 1, "mail-on-behalf", sprintf(
		"The agent will send e-mail in the name of %s; the recipients will believe it comes from them.",
		[input.identity.on_behalf_of[0].display]
	))
}

mail_rank := 3 if {
	effective_rank >= class_rank.confidential
} else := 2

# ---------------------------------------------------------------------------------------------------------
# Findings in production
# ---------------------------------------------------------------------------------------------------------

findings contains finding(4, critical_quorum, "payment", reason) if {
	production
	some a in input.actions
	is_payment(a)
	reason := "The agent wants to move money out of the company; payments in production need two approvers."
}

findings contains finding(3, 1, "refund", reason) if {
	production
	some a in input.actions
	not is_read(a)
	has_any(a, refund_words)
	not is_payment(a)
	reason := concat(" ", [
		"The agent wants to refund a payment; the money returns to the original card and cannot be recalled,",
		"so an approver confirms the amount and the customer.",
	])
}

findings contains finding(4, critical_quorum, "secret-change", reason) if {
	production
	some a in input.actions
	is_secret_change(a)
	reason := concat(" ", [
		"The agent wants to change or delete a production secret; a wrong rotation can take services down",
		"or leak access, so two approvers must agree.",
	])
}

findings contains finding(4, critical_quorum, "schema-change", reason) if {
	production
	some a in input.actions
	is_schema_change(a)
	reason := concat(" ", [
		"The agent wants to change the schema of a production database (drop, alter, truncate or migrate);",
		"data can be lost for good, so two approvers must agree.",
	])
}

findings contains finding(4, critical_quorum, "iam-admin-grant", reason) if {
	production
	some a in input.actions
	is_iam_change(a)
	grants_admin(a)
	reason := "The agent wants to grant an administrative or owner role in production; two approvers must agree to widen privileges this far."
}

# Separation of duties: any other change of roles or permissions is high with two approvers.
findings contains finding(3, 2, "iam-change", reason) if {
	production
	some a in input.actions
	is_iam_change(a)
	reason := "The agent wants to change who may do what in production (roles or permissions); two approvers must agree."
}

findings contains finding(rank, 1, "production-deploy", reason) if {
	production
	some a in input.actions
	not is_read(a)
	has_any(a, deploy_words)
	[rank, reason] := deploy_risk(a)
}

deploy_risk(a) := [2, "The agent wants to deploy to production; every customer will run the new version, so an approver confirms the release."] if {
	a.reversible
} else := [3, "The agent wants to deploy to production in a way it marks as not reversible; an approver confirms the release."]

# The baseline for every action in production, by what it does and how sensitive the data is:
#
#                      public/internal   confidential   restricted
#   read               (allow)           medium         high
#   reversible change  low               medium         high
#   irreversible       medium            high           high
findings contains finding(rank, 1, id, reason) if {
	production
	some a in input.actions
	[rank, id, reason] := baseline(a)
	rank > 0
}

baseline(a) := [0, "", ""] if {
	is_read(a)
	effective_rank <= class_rank.internal
} else := [2, "confidential-read", "The agent wants to read confidential data in production; an approver confirms that the purpose justifies the access."] if {
	is_read(a)
	effective_rank == class_rank.confidential
} else := [3, "restricted-read", "The agent wants to read restricted data in production (regulated, financial, personnel or secret records); an approver confirms that the purpose justifies the access."] if {
	is_read(a)
} else := [1, "reversible-change", sprintf("The agent wants to change %s data in production; the change can be undone, but a person should see it first.", [effective_class])] if {
	a.reversible
	effective_rank <= class_rank.internal
} else := [2, "reversible-change", "The agent wants to change confidential data in production; the change can be undone, but an approver confirms it first."] if {
	a.reversible
	effective_rank == class_rank.confidential
} else := [3, "restricted-change", "The agent wants to change restricted data in production; even though it can be undone, an approver confirms it first."] if {
	a.reversible
} else := [2, "irreversible-change", sprintf("The agent wants to make a change to %s data in production that cannot be undone.", [effective_class])] if {
	effective_rank <= class_rank.internal
} else := [3, "irreversible-sensitive-change", sprintf("The agent wants to make a change to %s data in production that cannot be undone; an approver must confirm it.", [effective_class])]

# ---------------------------------------------------------------------------------------------------------
# Findings outside production: reversible work passes; anything that cannot be undone is low.
# ---------------------------------------------------------------------------------------------------------

findings contains f if {
	not production
	some a in input.actions
	not a.reversible
	f := finding(1, 1, "irreversible-outside-production", sprintf(
		"The action cannot be undone, even though it runs in %s; a person should confirm it.",
		[environment]
	))
}

# ---------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------

# Among findings of the same tier and quorum the approver reads the most telling reason: a look-alike
# name first, then any rule-specific reason, then the baseline.
finding(rank, approvals, id, reason) := {
	"rank": rank,
	"approvals": approvals,
	"specificity": specificity(id),
	"id": id,
	"reason": reason,
}

baseline_ids := {
	"confidential-read", "restricted-read", "reversible-change", "restricted-change", "irreversible-change",
	"irreversible-sensitive-change",
}

specificity(id) := 2 if {
	id == "lookalike-name"
} else := 0 if {
	id in baseline_ids
} else := 1

class_rank := {"public": 0, "internal": 1, "confidential": 2, "restricted": 3}

class_names := ["public", "internal", "confidential", "restricted"]

environment := lower(trim_space(input.target.environment))

production if not environment in non_production

trust_domain := split(input.workload, "/")[2]

# All data categories: declared for the request and per action.
categories contains lower(c) if some c in input.data.categories

categories contains lower(c) if {
	some a in input.actions
	some c in object.get(a, "datatypes", [])
}

# The highest of the declared class, the catalogue's class for the target and the category floors.
# A class this policy does not know counts as restricted; a system the catalogue does not know adds nothing.
effective_rank := max({declared_rank, catalogue_rank} | {class_rank[category_floor[c]] | some c in categories})

declared_rank := object.get(class_rank, input.data.class, class_rank.restricted)

catalogue_rank := class_rank[object.get(catalogue, system, "public")]

system := lower(trim_space(input.target.system))

effective_class := class_names[effective_rank]

# Words of a name: lower case, split on . _ - / : and spaces.
words(s) := {w |
	some w in split(replace(replace(replace(replace(replace(lower(s), "_", "."), "-", "."), "/", "."), ":", "."), " ", "."), ".")
	w != ""
}

action_names(a) := [a.tool, object.get(a, "operation", "")]

action_words(a) := words(a.tool) | words(object.get(a, "operation", ""))

has_any(a, vocabulary) if {
	some w in action_words(a)
	w in vocabulary
}

# Only plain ASCII letters, digits and . _ - / : (trim removes them all from a plain name).
plain_name(s) if trim(lower(s), "abcdefghijklmnopqrstuvwxyz0123456789._-/:") == ""

# Reads: named as one, named as nothing else, reversible, and any SQL in them changes nothing.
# Computed once per request (SQL can be long), then looked up.
reads contains a if {
	some a in input.actions
	a.reversible
	has_any(a, read_verbs)
	not has_any(a, write_verbs)
	not mutating_sql(a)
}

is_read(a) if a in reads

# SQL in the arguments, upper case, split into words.
sql_words(a) := {w |
	some k, v in a.args
	k in sql_keys
	is_string(v)
	some w in split(sql_normalise(v), " ")
	w != ""
}

sql_normalise(v) := upper(replace(replace(replace(replace(replace(replace(replace(v, "\n", " "), "\t", " "), "\r", " "), "(", " "), ")", " "), ",", " "), ";", " "))

mutating_sql(a) if {
	some w in sql_words(a)
	w in sql_mutations
}

is_payment(a) if {
	not is_read(a)
	has_any(a, money_verbs)
}

# "payments.create" is a payment; "payments.refund" is a refund.
is_payment(a) if {
	not is_read(a)
	has_any(a, {"payment", "payments"})
	not has_any(a, refund_words)
}

is_secret_change(a) if {
	not is_read(a)
	has_any(a, secret_words)
}

is_secret_change(a) if {
	not is_read(a)
	"secrets" in categories
}

is_schema_change(a) if {
	not is_read(a)
	has_any(a, schema_words)
}

is_schema_change(a) if {
	not is_read(a)
	has_any(a, schema_verbs)
	has_any(a, schema_objects)
}

is_schema_change(a) if {
	"TRUNCATE" in sql_words(a)
}

is_schema_change(a) if {
	sql := sql_words(a)
	some verb in {"DROP", "ALTER"}
	verb in sql
	some thing in sql_schema_objects
	thing in sql
}

is_iam_change(a) if {
	not is_read(a)
	has_any(a, iam_words)
}

grants_admin(a) if {
	some role in role_values(a)
	some marker in admin_markers
	contains(role, marker)
}

# Role-like arguments, as a string or a list of strings.
role_values(a) := {lower(v) | some k, v in a.args; k in role_keys; is_string(v)} | {lower(r) |
	some k, v in a.args
	k in role_keys
	is_array(v)
	some r in v
	is_string(r)
}

is_mail_send(a) if {
	has_any(a, mail_words)
	has_any(a, mail_verbs)
}

is_export(a) if has_any(a, export_verbs)

# Where an action sends data, from its destination-like arguments.
destinations(a) := {lower(trim_space(v)) |
	some k, v in a.args
	k in destination_keys
	is_string(v)
}

# The host of a URL (scheme://user@host:port/path), an address (user@host) or a bare host[:port]/path.
host_of(v) := h if {
	contains(v, "://")
	authority := split(split(v, "://")[1], "/")[0]
	parts := split(authority, "@")
	h := split(parts[count(parts) - 1], ":")[0]
} else := h if {
	contains(v, "@")
	parts := split(v, "@")
	h := split(split(parts[count(parts) - 1], ":")[0], "/")[0]
} else := split(split(v, "/")[0], ":")[0]

internal_host(h) if h in internal_domains

internal_host(h) if {
	some d in internal_domains
	endswith(h, concat("", [".", d]))
}

external_destination(a) if {
	some d in destinations(a)
	not internal_host(host_of(d))
}

external_destination(a) if a.args.external == true

# External and not an approved processor (or flagged external with no destination we could check).
unapproved_external(a) if {
	some d in destinations(a)
	h := host_of(d)
	not internal_host(h)
	not h in approved_processors
}

unapproved_external(a) if {
	a.args.external == true
	count(destinations(a)) == 0
}
