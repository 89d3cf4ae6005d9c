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
# What it reads
#   input.*        the draft as the agent submitted it, and input.workload (who authenticated).
#   input.facts.*  what the gateway's parsers make of the draft (crates/gateway/src/facts.rs): the hosts
#                  every action names (WHATWG URL parsing, any key, any depth, with their zone: internal,
#                  approved or external), its SQL (sqlparser: statement kinds, schema or data changes,
#                  unparseable SQL, risky SQL: statements it does not understand or acting functions),
#                  the catalogued systems its arguments name and whether they carry a production marker,
#                  the words of tool and operation names (camelCase and concatenations split), look-alike
#                  names, the normalised target system and the catalogued systems it resembles, the
#                  workload's SPIFFE trust domain.
#   data.*         the organisation's data file (policy/data.json, or --policy-data): trust domains, system
#                  catalogue (environment and class of each system), tool catalogue (kind, and optionally
#                  the systems a tool belongs to), vocabulary.
# This policy never parses an agent's strings itself: spelling cannot steer it.
#
# How it decides
#   1. Denials: requests nobody should be asked to approve (untrusted workload, restricted data leaving
#      the company for an unvetted place, ...). Any denial wins.
#   2. Findings: every rule that sees a risk adds a finding {rank, approvals, id, reason}. The step-up
#      takes the tier of the riskiest finding and the largest quorum of all findings, so a harmless
#      first action can never hide a dangerous second one.
#   3. Otherwise the request is allowed (reads of public/internal data, reversible work outside production),
#      but never for a system the catalogue does not know or a tool it does not declare.
#
# The catalogue, not the agent, decides a known system's environment and class. The agent's declarations
# are only trusted upwards: the effective data class is the highest of what the agent declares, what the
# catalogue says about the target system (or about the catalogued systems an unknown name resembles), and
# what the declared data categories imply.

package countersign

import rego.v1

# ---------------------------------------------------------------------------------------------------------
# Configuration (organisation data lives in the data file; these are the policy's own judgements)
# ---------------------------------------------------------------------------------------------------------

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

# Role values that make a grant administrative (matched as substrings: "roles/owner" is an owner role).
admin_markers := {"admin", "owner", "root", "superuser", "*"}

# Tool kinds from the tool catalogue that make an action a change whatever its name says.
risky_kinds := {"write", "payment", "refund", "secret", "schema", "iam", "deploy", "export", "mail"}

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
	not input.facts.workload.spiffe
}

denials contains {
	"priority": 2,
	"id": "untrusted-trust-domain",
	"reason": sprintf("The workload belongs to the SPIFFE trust domain \"%s\", which this gateway does not trust.", [trust_domain]),
} if {
	input.facts.workload.spiffe
	not trust_domain in data.trust_domains
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
	count(unapproved_outbound) > 0
}

# ---------------------------------------------------------------------------------------------------------
# Findings. Each is finding(rank, approvals, id, reason) with rank 1 low, 2 medium, 3 high, 4 critical.
# Findings that apply in every environment come first: data leaving, look-alike names, mail, unknown names.
#
# The rules below do not inspect actions themselves: they test the sets of action positions computed once
# per request under "What each action does" (payments, refunds, outbound, ...).
# ---------------------------------------------------------------------------------------------------------

# Look-alike names: a Cyrillic "р" in "рayments" renders like "payments" but is another tool.
findings contains finding(4, critical_quorum, "lookalike-name", lookalike_reason) if {
	input.facts.lookalike
}

lookalike_reason := concat(" ", [
	"A tool, operation or system name contains characters other than plain ASCII letters, digits and . _ - / :,",
	"which can make one tool look like another; two approvers must confirm what it really is.",
])

# Confidential or restricted data to an outside destination that is not an approved processor
# (restricted data there is denied above; this also covers confidential data and personal data).
findings contains f if {
	effective_rank >= class_rank.confidential
	count(unapproved_outbound) > 0
	f := finding(4, critical_quorum, "sensitive-export-external", sprintf(
		"The agent wants to send %s data to a destination outside the company that is not an approved processor; two approvers must agree that it may leave.",
		[effective_class]
	))
}

# To an approved processor: high, or critical for restricted data.
findings contains f if {
	effective_rank >= class_rank.confidential
	count(external_outbound - unapproved_outbound) > 0
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

# A system the catalogue does not know: the gateway cannot vouch for its environment or data, so a
# person always sees the request (low, unless another finding says more).
findings contains finding(1, 1, "uncatalogued-system", reason) if {
	not input.facts.target.catalogued
	reason := sprintf(
		"The target system \"%s\" is not in the system catalogue, so its environment and data class are only what the agent says; a person confirms it.",
		[input.facts.target.system]
	)
}

# A tool the catalogue does not declare: same reasoning.
findings contains finding(1, 1, "undeclared-tool", reason) if {
	some a in input.facts.actions
	not a.declared
	reason := sprintf(
		"The tool \"%s\" is not in the tool catalogue; a person confirms what it does before it runs.",
		[a.tool]
	)
}

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
		"The agent wants to change the schema of a production database (drop, alter, truncate or migrate),",
		"or sends SQL the gateway cannot parse or fully vouch for (commands, procedures, functions that act);",
		"data can be lost for good, so two approvers must agree.",
	])
}

findings contains finding(4, critical_quorum, "iam-admin-grant", reason) if {
	production
	some i in iam_changes
	some role in input.facts.actions[i].roles
	some marker in admin_markers
	contains(role, marker)
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
	reversible(i)
	effective_rank <= class_rank.internal
} else := [2, "reversible-change", "The agent wants to change confidential data in production; the change can be undone, but an approver confirms it first."] if {
	reversible(i)
	effective_rank == class_rank.confidential
} else := [3, "restricted-change", "The agent wants to change restricted data in production; even though it can be undone, an approver confirms it first."] if {
	reversible(i)
} else := [2, "irreversible-change", sprintf("The agent wants to make a change to %s data in production that cannot be undone.", [effective_class])] if {
	effective_rank <= class_rank.internal
} else := [3, "irreversible-sensitive-change", sprintf("The agent wants to make a change to %s data in production that cannot be undone; an approver must confirm it.", [effective_class])]

# ---------------------------------------------------------------------------------------------------------
# Findings outside production: reversible work passes; anything that cannot be undone is low.
# ---------------------------------------------------------------------------------------------------------

findings contains f if {
	not production
	some i, _ in input.actions
	not reversible(i)
	f := finding(1, 1, "irreversible-outside-production", sprintf(
		"The action cannot be undone, even though it runs in %s; a person should confirm it.",
		[environment]
	))
}

# Outside production, actions whose kind is risky wherever it runs (money, secrets, access, schemas and
# SQL, deploys, mail, data leaving for an outside host) are never allowed without a person: a sandbox
# payment or a staging IAM binding may still reach real systems, people or money.
findings contains f if {
	not production
	count(risky_anywhere) > 0
	f := finding(1, 1, "risky-outside-production", sprintf(
		"The agent wants to move money, change secrets, access, schemas or deployments, send mail or send data outside the company, even though it runs in %s; a person confirms it.",
		[environment]
	))
}

risky_anywhere := (((((payments | refunds) | secret_changes) | iam_changes) | schema_changes) | deploys) | (mail_sends | external_outbound)

# Any action that names a host outside the company that is not an approved processor (in a URL, a mail
# address or a bare host, under any key, in any environment) may carry data there, whatever the tool
# says it does: never without a person (low; the export rules above say more for sensitive data).
findings contains finding(1, 1, "external-destination", reason) if {
	some a in input.facts.actions
	some h in a.hosts
	h.zone == "external"
	reason := sprintf(
		"The action names the outside host \"%s\", which is not an approved processor; data could leave the company there, so a person confirms it.",
		[h.host]
	)
}

# A tool the catalogue ties to some systems (data.tools[tool].systems) used against another system.
findings contains finding(1, 1, "tool-outside-its-systems", reason) if {
	some a in input.facts.actions
	allowed := {s | some s in object.get(object.get(data.tools, a.tool, {}), "systems", [])}
	count(allowed) > 0
	some s in array.concat([input.facts.target.system], a.systems)
	not s in allowed
	reason := sprintf(
		"The tool \"%s\" belongs to other systems than \"%s\"; a person confirms that it is meant to act there.",
		[a.tool, s]
	)
}

# ---------------------------------------------------------------------------------------------------------
# What each action does.
#
# Each set below holds positions (indexes into input.actions) of the actions of one kind. They are complete
# rules, so the engine computes each at most once per request, and only when a rule above asks for it.
# ---------------------------------------------------------------------------------------------------------

# The data file's word lists as sets.
vocabulary := {name: {w | some w in words} | some name, words in data.vocabulary}

# Words of each action's tool and operation names, by position: the words the facts step split out, and
# for risk vocabularies also the vocabulary words it found inside longer tokens ("sendfunds").
exact_words := [{w | some w in a.words} | some a in input.facts.actions]

risk_words := [{w | some w in array.concat(a.words, a.word_parts)} | some a in input.facts.actions]

# The catalogue's kind of each action's tool ("" when undeclared).
kinds := [object.get(object.get(data.tools, a.tool, {}), "kind", "") | some a in input.facts.actions]

# Below, "count(risk_words[i] & vocabulary.x) > 0" reads "action i mentions a word of vocabulary x".

# Reads: reversible, named as a read (or declared one), named as nothing else, declared as nothing
# riskier, and any SQL in them only queries (unparseable SQL is never a read).
reads contains i if {
	some i, a in input.actions
	a.reversible
	named_read(i)
	count(risk_words[i] & vocabulary.write) == 0
	not kinds[i] in risky_kinds
	sql := input.facts.actions[i].sql
	not sql.data_change
	not sql.schema_change
	not sql.unparseable
	not sql.risky
}

# An action is reversible only when the agent says so and it changes no data or schema through SQL
# (SQL changes cannot be rolled back once committed, whatever the agent says).
reversible(i) if {
	input.actions[i].reversible
	sql := input.facts.actions[i].sql
	not sql.data_change
	not sql.schema_change
	not sql.unparseable
	not sql.risky
}

named_read(i) if count(exact_words[i] & vocabulary.read) > 0

named_read(i) if kinds[i] == "read"

# Everything that is not a read.
changes := {i | some i, _ in input.actions} - reads

payments contains i if {
	some i in changes
	count(risk_words[i] & vocabulary.money) > 0
}

# "payments.create" is a payment; "payments.refund" is a refund.
payments contains i if {
	some i in changes
	count(risk_words[i] & vocabulary.payment) > 0
	count(risk_words[i] & vocabulary.refund) == 0
}

payments contains i if {
	some i in changes
	kinds[i] == "payment"
}

refunds contains i if {
	some i in changes
	count(risk_words[i] & vocabulary.refund) > 0
	not i in payments
}

refunds contains i if {
	some i in changes
	kinds[i] == "refund"
	not i in payments
}

secret_changes contains i if {
	some i in changes
	count(risk_words[i] & vocabulary.secret) > 0
}

secret_changes contains i if {
	some i in changes
	kinds[i] == "secret"
}

# Any change at all when the request touches secrets.
secret_changes contains i if {
	"secrets" in categories
	some i in changes
}

schema_changes contains i if {
	some i in changes
	count(risk_words[i] & vocabulary.schema) > 0
}

# A schema verb counts only together with a schema object ("drop" alone could be anything).
schema_changes contains i if {
	some i in changes
	count(risk_words[i] & vocabulary.schema_verb) > 0
	count(risk_words[i] & vocabulary.schema_object) > 0
}

schema_changes contains i if {
	some i in changes
	kinds[i] == "schema"
}

# SQL that drops, alters, truncates or creates a database object, read or not; and SQL that looked
# like SQL but did not parse (what it would do is unknown, so it counts as the worst it could be).
schema_changes contains i if {
	some i, a in input.facts.actions
	a.sql.schema_change
}

schema_changes contains i if {
	some i, a in input.facts.actions
	a.sql.unparseable
}

# SQL the policy does not fully understand (commands, procedures, COPY, DO, PREPARE/EXECUTE, SET, or a
# query calling a function that may act): as risky as a schema change.
schema_changes contains i if {
	some i, a in input.facts.actions
	a.sql.risky
}

iam_changes contains i if {
	some i in changes
	count(risk_words[i] & vocabulary.iam) > 0
}

iam_changes contains i if {
	some i in changes
	kinds[i] == "iam"
}

# A change that sets role, group, permission or privilege values (input.facts.actions[i].roles) hands
# out access whatever the tool is called ("okta.users.update" with groups ["admins"]).
iam_changes contains i if {
	some i in changes
	count(input.facts.actions[i].roles) > 0
}

# SQL GRANT and REVOKE change who may do what.
iam_changes contains i if {
	some i, a in input.facts.actions
	some kind in a.sql.kinds
	kind in {"grant", "revoke"}
}

deploys contains i if {
	some i in changes
	count(risk_words[i] & vocabulary.deploy) > 0
}

deploys contains i if {
	some i in changes
	kinds[i] == "deploy"
}

mail_sends contains i if {
	some i, _ in input.actions
	count(risk_words[i] & vocabulary.mail) > 0
	count(risk_words[i] & vocabulary.mail_verb) > 0
}

mail_sends contains i if {
	some i in changes
	kinds[i] == "mail"
}

# Actions that send data somewhere: exports and uploads, network calls (http, webhooks, ...), mail, and
# any action that names a URL (a read of an outside URL can carry data out in its query). Where they send it is every host the action names (any key, any form).
outbound contains i if {
	some i, _ in input.actions
	count(risk_words[i] & vocabulary.export) > 0
}

outbound contains i if {
	some i, _ in input.actions
	count(risk_words[i] & vocabulary.network) > 0
}

outbound contains i if {
	some i, _ in input.actions
	kinds[i] == "export"
}

# Mail goes where its recipients are: sensitive data mailed outside is sensitive data leaving.
outbound contains i if {
	some i in mail_sends
}

outbound contains i if {
	some i, a in input.facts.actions
	some h in a.hosts
	h.form == "url"
}

outbound contains i if {
	some i, a in input.facts.actions
	a.flagged_external
}

# Outbound to a destination outside the company (or flagged external).
external_outbound contains i if {
	some i in outbound
	some h in input.facts.actions[i].hosts
	h.zone != "internal"
}

external_outbound contains i if {
	some i in outbound
	input.facts.actions[i].flagged_external
}

# Outbound to a host that is neither internal nor an approved processor (or flagged external with no
# destination we could check).
unapproved_outbound contains i if {
	some i in outbound
	some h in input.facts.actions[i].hosts
	h.zone == "external"
}

unapproved_outbound contains i if {
	some i in outbound
	a := input.facts.actions[i]
	a.flagged_external
	count(a.hosts) == 0
}

# ---------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------

# Among findings of the same tier and quorum the approver reads the most telling reason: a look-alike
# name first, then any rule-specific reason, then the baseline, then unknown names.
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
} else := 0 if {
	# The general reason outside production: a more specific one of the same tier reads better.
	id == "risky-outside-production"
} else := -1 if {
	id in {"uncatalogued-system", "undeclared-tool"}
} else := 1

class_rank := {"public": 0, "internal": 1, "confidential": 2, "restricted": 3}

class_names := ["public", "internal", "confidential", "restricted"]

# The environment the request runs in: the catalogue's for a catalogued system; for an unknown name that
# resembles a catalogued production system ("orders-db.prod"), production; otherwise what the agent says.
environment := data.systems[input.facts.target.system].environment if {
	input.facts.target.catalogued
} else := "production" if {
	some s in input.facts.target.resembles
	not data.systems[s].environment in non_production
} else := input.facts.target.declared_environment

# The agent's declaration is trusted upwards only: a request it says runs in production (or anywhere
# unknown) is judged as production, and so is one whose actions target a catalogued production system.
production if not environment in non_production

production if not input.facts.target.declared_environment in non_production

production if {
	some a in input.facts.actions
	some s in a.systems
	not data.systems[s].environment in non_production
}

# A catalogued production system named anywhere in an action's arguments (a DSN's host
# "orders-db.acme.internal", a cluster "k8s-prod"): the action reaches production whatever the target.
production if {
	some a in input.facts.actions
	some s in a.named_systems
	not data.systems[s].environment in non_production
}

# Money, secrets, access, schemas and deploys whose arguments say prod, production or live ("sk_live_…",
# "mode": "live", "acme-prod", "prod/db") are judged as production.
production if {
	some i in marked_kinds
	input.facts.actions[i].production_marker
}

marked_kinds := ((((payments | refunds) | secret_changes) | iam_changes) | schema_changes) | deploys

trust_domain := input.facts.workload.trust_domain

# All data categories: declared for the request and per action.
categories contains lower(c) if some c in input.data.categories

categories contains lower(c) if {
	some a in input.actions
	some c in object.get(a, "datatypes", [])
}

# The highest of the declared class, the catalogue's class for the target (or for every catalogued
# system an unknown name resembles) and the category floors. A class this policy does not know counts
# as restricted.
effective_rank := max(({declared_rank} | catalogue_ranks) | {class_rank[category_floor[c]] | some c in categories})

declared_rank := object.get(class_rank, input.data.class, class_rank.restricted)

catalogue_ranks contains class_rank[data.systems[input.facts.target.system].class] if input.facts.target.catalogued

catalogue_ranks contains class_rank[data.systems[s].class] if some s in input.facts.target.resembles

catalogue_ranks contains class_rank[data.systems[s].class] if {
	some a in input.facts.actions
	some s in a.systems
}

effective_class := class_names[effective_rank]
