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
# "payments.pay_invoice" is {"payments", "pay", "invoice"}. An action "mentions" a vocabulary entry when one
# of its words is in that entry's set.
#
# The lists are kept in one object (rather than one rule each) on purpose: the engine evaluates every rule
# afresh for each request, and one object costs a single rule evaluation instead of fifteen.
# ---------------------------------------------------------------------------------------------------------

vocabulary := {
	"read": {
		"get", "read", "list", "search", "query", "fetch", "describe", "view", "lookup", "find", "show",
		"retrieve", "select", "count", "inspect", "status",
	},
	# A word from this list makes an action a change even if it also carries a read verb.
	"write": {
		"create", "update", "delete", "remove", "put", "post", "patch", "write", "set", "send", "reply",
		"forward", "insert", "drop", "alter", "truncate", "rotate", "revoke", "grant", "assign", "deploy",
		"export", "upload", "pay", "transfer", "refund", "erase", "purge", "destroy", "publish", "sync", "share",
		"merge", "apply", "execute", "exec", "migrate", "disable", "enable",
	},
	"money": {
		"pay", "payout", "payouts", "transfer", "transfers", "wire", "disburse", "disbursement", "remit",
		"remittance",
	},
	"payment": {"payment", "payments"},
	"refund": {"refund", "refunds"},
	"secret": {
		"secret", "secrets", "vault", "kms", "credential", "credentials", "password", "passwords", "apikey",
		"certificate", "certificates", "cert", "certs",
	},
	"schema": {"migrate", "migration", "migrations", "truncate", "ddl"},
	# A schema verb counts only together with a schema object ("drop" alone could be anything).
	"schema_verb": {"drop", "alter"},
	"schema_object": {"table", "tables", "column", "columns", "schema", "database", "index", "collection"},
	"iam": {
		"iam", "role", "roles", "rolebinding", "rolebindings", "permission", "permissions", "privilege",
		"privileges", "acl",
	},
	"deploy": {"deploy", "deployment", "rollout", "release", "promote"},
	"export": {"export", "upload", "share", "sync", "dump", "push", "copy", "replicate"},
	"mail": {"mail", "email", "gmail", "smtp", "outlook", "exchange", "sendgrid"},
	"mail_verb": {"send", "reply", "forward"},
}

# Role values that make a grant administrative (matched as substrings: "roles/owner" is an owner role).
admin_markers := {"admin", "owner", "root", "superuser", "*"}

# Argument names that hold roles or permissions.
role_keys := {"role", "roles", "permission", "permissions", "group", "groups"}

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
	# The class the policy judged by (never lower than the agent declared): the signed request
	# shows the approver this one, not the agent's own declaration.
	"data_class": effective_class,
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
	count(unapproved_exports) > 0
}

# ---------------------------------------------------------------------------------------------------------
# Findings. Each is finding(rank, approvals, id, reason) with rank 1 low, 2 medium, 3 high, 4 critical.
# Findings that apply in every environment come first: data leaving, look-alike names, mail in a person's name.
#
# The rules below do not inspect actions themselves: they test the sets of action positions computed once
# per request under "What each action does" (payments, refunds, exports, ...). A finding is the same
# whichever action triggered it, so most rules only ask whether such an action exists.
# ---------------------------------------------------------------------------------------------------------

# Look-alike names: a Cyrillic "р" in "рayments" renders like "payments" but is another tool. All tool,
# operation and system names are checked in one go (a concatenation is plain exactly when every name is).
findings contains finding(4, critical_quorum, "lookalike-name", lookalike_reason) if {
	not plain_name(concat("", array.concat([input.target.system], action_names)))
}

lookalike_reason := concat(" ", [
	"A tool, operation or system name contains characters other than plain ASCII letters, digits and . _ - / :,",
	"which can make one tool look like another; two approvers must confirm what it really is.",
])

# Confidential or restricted data to an outside destination that is not an approved processor
# (restricted data there is denied above; this also covers confidential data and personal data).
findings contains f if {
	effective_rank >= class_rank.confidential
	count(unapproved_exports) > 0
	f := finding(4, critical_quorum, "sensitive-export-external", sprintf(
		"The agent wants to send %s data to a destination outside the company that is not an approved processor; two approvers must agree that it may leave.",
		[effective_class]
	))
}

# To an approved processor: high, or critical for restricted data.
findings contains f if {
	effective_rank >= class_rank.confidential
	count(external_exports - unapproved_exports) > 0
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
	count(mail_sends) > 0
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
	count(payments) > 0
	reason := "The agent wants to move money out of the company; payments in production need two approvers."
}

findings contains finding(3, 1, "refund", reason) if {
	production
	count(refunds) > 0
	reason := concat(" ", [
		"The agent wants to refund a payment; the money returns to the original card and cannot be recalled,",
		"so an approver confirms the amount and the customer.",
	])
}

findings contains finding(4, critical_quorum, "secret-change", reason) if {
	production
	count(secret_changes) > 0
	reason := concat(" ", [
		"The agent wants to change or delete a production secret; a wrong rotation can take services down",
		"or leak access, so two approvers must agree.",
	])
}

findings contains finding(4, critical_quorum, "schema-change", reason) if {
	production
	count(schema_changes) > 0
	reason := concat(" ", [
		"The agent wants to change the schema of a production database (drop, alter, truncate or migrate);",
		"data can be lost for good, so two approvers must agree.",
	])
}

findings contains finding(4, critical_quorum, "iam-admin-grant", reason) if {
	production
	some i in iam_changes
	grants_admin(input.actions[i])
	reason := "The agent wants to grant an administrative or owner role in production; two approvers must agree to widen privileges this far."
}

# Separation of duties: any other change of roles or permissions is high with two approvers.
findings contains finding(3, 2, "iam-change", reason) if {
	production
	count(iam_changes) > 0
	reason := "The agent wants to change who may do what in production (roles or permissions); two approvers must agree."
}

findings contains finding(rank, 1, "production-deploy", reason) if {
	production
	some i in deploys
	[rank, reason] := deploy_risk(input.actions[i])
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
	some i, a in input.actions
	[rank, id, reason] := baseline(i, a)
	rank > 0
}

baseline(i, a) := [0, "", ""] if {
	i in reads
	effective_rank <= class_rank.internal
} else := [2, "confidential-read", "The agent wants to read confidential data in production; an approver confirms that the purpose justifies the access."] if {
	i in reads
	effective_rank == class_rank.confidential
} else := [3, "restricted-read", "The agent wants to read restricted data in production (regulated, financial, personnel or secret records); an approver confirms that the purpose justifies the access."] if {
	i in reads
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
# What each action does.
#
# Each set below holds positions (indexes into input.actions) of the actions of one kind. They are complete
# rules, so the engine computes each at most once per request, and only when a rule above asks for it
# (outside production, for instance, payments are never looked at). The words of every tool and operation
# name, and the SQL words of every action, are likewise computed once, in action_words and action_sql.
# ---------------------------------------------------------------------------------------------------------

# Words of each action's tool and operation name, by position: lower case, split on . _ - / : and spaces.
action_words := [{w |
	some name in [a.tool, object.get(a, "operation", "")]
	some w in split(replace(replace(replace(replace(replace(lower(name), "_", "."), "-", "."), "/", "."), ":", "."), " ", "."), ".")
	w != ""
} |
	some a in input.actions
]

# Upper-case words of the SQL in each action's SQL-like arguments, by position (empty for most actions).
action_sql := [{w |
	some k, v in a.args
	k in sql_keys
	is_string(v)
	some w in split(sql_normalise(v), " ")
	w != ""
} |
	some a in input.actions
]

# All tool and operation names, for the look-alike check.
action_names := [name | some a in input.actions; some name in [a.tool, object.get(a, "operation", "")]]

# Below, "count(action_words[i] & vocabulary.x) > 0" reads "action i mentions a word of vocabulary x".
# (Written out rather than as a helper function: a function call costs more than the test itself.)

# Reads: reversible, named as a read, named as nothing else, and any SQL in them changes nothing.
reads contains i if {
	some i, a in input.actions
	a.reversible
	count(action_words[i] & vocabulary.read) > 0
	count(action_words[i] & vocabulary.write) == 0
	count(action_sql[i] & sql_mutations) == 0
}

# Everything that is not a read.
changes := {i | some i, _ in input.actions} - reads

payments contains i if {
	some i in changes
	count(action_words[i] & vocabulary.money) > 0
}

# "payments.create" is a payment; "payments.refund" is a refund.
payments contains i if {
	some i in changes
	count(action_words[i] & vocabulary.payment) > 0
	count(action_words[i] & vocabulary.refund) == 0
}

refunds contains i if {
	some i in changes
	count(action_words[i] & vocabulary.refund) > 0
	not i in payments
}

secret_changes contains i if {
	some i in changes
	count(action_words[i] & vocabulary.secret) > 0
}

# Any change at all when the request touches secrets.
secret_changes contains i if {
	"secrets" in categories
	some i in changes
}

schema_changes contains i if {
	some i in changes
	count(action_words[i] & vocabulary.schema) > 0
}

schema_changes contains i if {
	some i in changes
	count(action_words[i] & vocabulary.schema_verb) > 0
	count(action_words[i] & vocabulary.schema_object) > 0
}

# SQL that truncates, or drops or alters a table, schema, ..., read or not.
schema_changes contains i if {
	some i, sql in action_sql
	"TRUNCATE" in sql
}

schema_changes contains i if {
	some i, sql in action_sql
	count(sql & {"DROP", "ALTER"}) > 0
	count(sql & sql_schema_objects) > 0
}

iam_changes contains i if {
	some i in changes
	count(action_words[i] & vocabulary.iam) > 0
}

deploys contains i if {
	some i in changes
	count(action_words[i] & vocabulary.deploy) > 0
}

mail_sends contains i if {
	some i, _ in input.actions
	count(action_words[i] & vocabulary.mail) > 0
	count(action_words[i] & vocabulary.mail_verb) > 0
}

exports contains i if {
	some i, _ in input.actions
	count(action_words[i] & vocabulary.export) > 0
}

# Exports to a destination outside the company (or flagged external).
external_exports contains i if {
	some i in exports
	some d in destinations(input.actions[i])
	not internal_host(host_of(d))
}

external_exports contains i if {
	some i in exports
	input.actions[i].args.external == true
}

# Exports outside the company and not to an approved processor (or flagged external with no destination we
# could check).
unapproved_exports contains i if {
	some i in exports
	some d in destinations(input.actions[i])
	h := host_of(d)
	not internal_host(h)
	not h in approved_processors
}

unapproved_exports contains i if {
	some i in exports
	a := input.actions[i]
	a.args.external == true
	count(destinations(a)) == 0
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

# Only plain ASCII letters, digits and . _ - / : (trim removes them all from a plain name).
plain_name(s) if trim(lower(s), "abcdefghijklmnopqrstuvwxyz0123456789._-/:") == ""

sql_normalise(v) := upper(replace(replace(replace(replace(replace(replace(replace(v, "\n", " "), "\t", " "), "\r", " "), "(", " "), ")", " "), ",", " "), ";", " "))

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
