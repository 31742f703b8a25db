//! The tenant's policy: the rules that decide whether a plugin's side-effecting host call
//! is allowed, needs a person's approval (and whose), or is denied, and the approver
//! roles those rules name. Admins write a small TOML rule file; each rule compiles to one
//! Cedar policy, validated at parse time against a fixed schema of the call's facts, and
//! Cedar evaluates the conditions and decides. This module knows nothing of connectors,
//! SQL or wasmtime: callers describe one call in a [`Request`] and get a [`Decision`].
//!
//! In Cedar terms a call is `principal = Capdesk::Plugin::"<plugin id>"`,
//! `resource = Capdesk::Tenant::"<tenant id>"` and `action = Capdesk::Action::"call:<fn>"`
//! (`call:idp.add-group-member`). Each call action is a member of its capability group
//! (`Capdesk::Action::"capability:idp.groups"`) and of its interface group
//! (`Capdesk::Action::"interface:idp"`), so a rule's action list compiles to
//! `action in [...]`, and `*` to an unconstrained `action`. Read-only functions
//! (`idp.find-user`, `psa.get-ticket`) are not actions: reads are governed by grants alone.

use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};
use std::ops::Range;
use std::str::FromStr;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cedar_policy::{
    Context, Entities, EntityId, EntityTypeName, EntityUid, EvalResult, Expression, PolicyId,
    PolicySet, RestrictedExpression, Schema, ValidationMode, Validator, pst,
};
use miette::Diagnostic;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::capability::{Capability, HostFunction};

/// The shipped default policy, the file an MSP admin copies and edits.
pub const DEFAULT_SOURCE: &str = include_str!("policy/default.toml");

/// How long an `ask` waits when the file sets no `approval_timeout`.
pub const DEFAULT_APPROVAL_TIMEOUT: Duration = Duration::from_secs(4 * 60 * 60);

/// The Cedar namespace of every entity type and action.
const NAMESPACE: &str = "Capdesk";

/// Every host function. `tests::every_host_function_is_listed` fails to compile when a
/// function is added to [`HostFunction`], as a reminder to list it here.
const FUNCTIONS: [HostFunction; 18] = [
    HostFunction::FindUser,
    HostFunction::VerifyIdentity,
    HostFunction::UnlockAccount,
    HostFunction::ResetPassword,
    HostFunction::RequireMfaReregistration,
    HostFunction::RevokeSessions,
    HostFunction::AddGroupMember,
    HostFunction::RemoveGroupMember,
    HostFunction::AssignLicense,
    HostFunction::RemoveLicense,
    HostFunction::GrantMailboxAccess,
    HostFunction::RemoveMailboxAccess,
    HostFunction::GetTicket,
    HostFunction::AddNote,
    HostFunction::SetStatus,
    HostFunction::LinkToParent,
    HostFunction::ChatSend,
    HostFunction::ChatAsk,
];

/// Stack Cedar needs free to evaluate (it asks for 100 KiB), with a margin.
const POLICY_RED_ZONE: usize = 192 * 1024;

/// The stack a decision gets when the current one is too small or unknown.
const POLICY_STACK: usize = 1024 * 1024;

// ---------------------------------------------------------------------------------------
// Decisions
// ---------------------------------------------------------------------------------------

/// What the policy says about one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum Decision {
    /// An allow rule matched and no ask or deny rule did.
    Allow { rule: String },
    /// An ask rule matched and no deny rule did: one of `approvers` must approve first.
    /// When several ask rules match, `rule` is the first in the file and `approvers` the
    /// union of theirs, in file order.
    Ask {
        rule: String,
        approvers: Vec<ApproverSpec>,
    },
    /// A deny rule matched (`rule` is set), or no rule allowed the call (`rule` is
    /// `None`), or a rule could not be evaluated. `reason` is a sentence for people.
    Deny {
        rule: Option<String>,
        reason: String,
    },
}

impl Decision {
    /// The rule that decided, if one did.
    pub fn rule(&self) -> Option<&str> {
        match self {
            Decision::Allow { rule } | Decision::Ask { rule, .. } => Some(rule),
            Decision::Deny { rule, .. } => rule.as_deref(),
        }
    }

    pub fn kind(&self) -> DecisionKind {
        match self {
            Decision::Allow { .. } => DecisionKind::Allow,
            Decision::Ask { .. } => DecisionKind::Ask,
            Decision::Deny { .. } => DecisionKind::Deny,
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Allow { rule } => write!(f, "allowed by rule `{rule}`"),
            Decision::Ask { rule, approvers } => {
                let who: Vec<String> = approvers.iter().map(ApproverSpec::to_string).collect();
                write!(
                    f,
                    "needs approval from {} (rule `{rule}`)",
                    who.join(" or ")
                )
            }
            Decision::Deny { reason, .. } => write!(f, "denied: {reason}"),
        }
    }
}

/// The three decisions a rule can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecisionKind {
    Allow,
    Ask,
    Deny,
}

impl DecisionKind {
    /// The key that introduces it in the rule file.
    pub fn name(self) -> &'static str {
        match self {
            DecisionKind::Allow => "allow",
            DecisionKind::Ask => "ask",
            DecisionKind::Deny => "deny",
        }
    }
}

impl fmt::Display for DecisionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Who may approve an `ask`, with roles already expanded. Resolving `Manager`,
/// `DepartmentHead` and `Group` to people is the caller's job (it has the directory).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "kebab-case")]
pub enum ApproverSpec {
    /// The target user's manager.
    Manager,
    /// The head of the target user's department, per `[department_heads]`.
    DepartmentHead,
    /// Any member of this directory group.
    Group(String),
    /// This person, by email address.
    Person(String),
}

impl fmt::Display for ApproverSpec {
    /// The form an admin writes in the rule file.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApproverSpec::Manager => f.write_str("manager"),
            ApproverSpec::DepartmentHead => f.write_str("department-head"),
            ApproverSpec::Group(name) => write!(f, "group:{name}"),
            ApproverSpec::Person(email) => f.write_str(email),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

/// The facts of one host call, as the policy sees them.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub tenant: &'a str,
    pub plugin: &'a str,
    pub function: HostFunction,
    /// The ticket category the plugin resolves.
    pub category: &'a str,
    pub ticket: TicketFacts<'a>,
    pub requester: Requester<'a>,
    /// The directory user the call changes; `None` for calls that change no user.
    pub target: Option<Target<'a>>,
    pub group: Option<&'a str>,
    pub license: Option<&'a str>,
    pub mailbox: Option<&'a str>,
    /// The mailbox right being granted or removed.
    pub right: Option<&'a str>,
    /// Who a chat message or question goes to.
    pub recipient: Option<&'a str>,
    /// When the call happens (UTC). A caller may leave it at [`CallTime::UNREAD`] for a
    /// function whose rules do not read it ([`Policy::reads_time`]).
    pub time: CallTime,
}

impl<'a> Request<'a> {
    /// A call with no ticket, requester, target or arguments, happening now; set the
    /// fields that apply.
    pub fn new(
        tenant: &'a str,
        plugin: &'a str,
        function: HostFunction,
        category: &'a str,
    ) -> Self {
        Request {
            tenant,
            plugin,
            function,
            category,
            ticket: TicketFacts::default(),
            requester: Requester::default(),
            target: None,
            group: None,
            license: None,
            mailbox: None,
            right: None,
            recipient: None,
            time: CallTime::now(),
        }
    }

    /// The requester is the target user: same email, ignoring ASCII case.
    pub fn requester_is_target(&self) -> bool {
        let email = self.requester.email.trim();
        !email.is_empty()
            && self
                .target
                .as_ref()
                .is_some_and(|t| t.email.trim().eq_ignore_ascii_case(email))
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct TicketFacts<'a> {
    pub id: &'a str,
    pub channel: &'a str,
    pub subject: &'a str,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Requester<'a> {
    pub email: &'a str,
    /// The requester's identity was verified for this ticket.
    pub verified: bool,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Target<'a> {
    pub email: &'a str,
    pub privileged: bool,
    pub enabled: bool,
    pub department: &'a str,
    /// The manager's email address, empty when the directory names none.
    pub manager: &'a str,
    pub groups: &'a [String],
    pub licenses: &'a [String],
}

/// The hour and weekday of a call, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallTime {
    /// 0 to 23.
    pub hour: u8,
    pub weekday: Weekday,
}

impl CallTime {
    /// A time for a request whose policy does not look at it (midnight, a Monday).
    pub const UNREAD: CallTime = CallTime {
        hour: 0,
        weekday: Weekday::Monday,
    };

    pub fn now() -> CallTime {
        CallTime::at(SystemTime::now())
    }

    /// The UTC hour and weekday of `time` (times before 1970 count as its first second).
    pub fn at(time: SystemTime) -> CallTime {
        let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let days = secs / 86_400;
        // 1970-01-01 was a Thursday, index 3 when Monday is 0.
        let weekday = Weekday::ALL[((days + 3) % 7) as usize];
        CallTime {
            hour: ((secs / 3600) % 24) as u8,
            weekday,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Weekday {
    pub const ALL: [Weekday; 7] = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ];

    /// The name rules compare `context.time.weekday` with (`"monday"`).
    pub fn name(self) -> &'static str {
        match self {
            Weekday::Monday => "monday",
            Weekday::Tuesday => "tuesday",
            Weekday::Wednesday => "wednesday",
            Weekday::Thursday => "thursday",
            Weekday::Friday => "friday",
            Weekday::Saturday => "saturday",
            Weekday::Sunday => "sunday",
        }
    }
}

impl fmt::Display for Weekday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Everything wrong with a rule file, each problem with its line.
#[derive(Debug, Clone, thiserror::Error)]
pub struct PolicyError {
    problems: Vec<Problem>,
}

impl PolicyError {
    /// The problems, by line; never empty.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_char('\n')?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// One problem in a rule file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// 1-based line in the rule file.
    pub line: usize,
    /// 1-based column (in characters), where known.
    pub column: Option<usize>,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Collects problems against one source text.
struct Report<'s> {
    source: &'s str,
    problems: Vec<Problem>,
}

impl<'s> Report<'s> {
    fn new(source: &'s str) -> Self {
        Report {
            source,
            problems: Vec::new(),
        }
    }

    /// A problem at byte `offset` of the source.
    fn at(&mut self, offset: usize, message: impl Into<String>) {
        let (line, column) = position(self.source, offset);
        let problem = Problem {
            line,
            column: Some(column),
            message: message.into(),
        };
        if !self.problems.contains(&problem) {
            self.problems.push(problem);
        }
    }

    fn into_result(mut self) -> Result<(), PolicyError> {
        if self.problems.is_empty() {
            return Ok(());
        }
        self.problems.sort_by_key(|p| (p.line, p.column));
        Err(PolicyError {
            problems: self.problems,
        })
    }
}

/// The 1-based line and character column of byte `offset` in `source`.
fn position(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

// ---------------------------------------------------------------------------------------
// The rule file
// ---------------------------------------------------------------------------------------

type Strings = Spanned<Vec<Spanned<String>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    approval_timeout: Option<Spanned<String>>,
    #[serde(default)]
    approvers: BTreeMap<String, Strings>,
    #[serde(default)]
    department_heads: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    rule: Vec<Spanned<RuleEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleEntry {
    name: Option<Spanned<String>>,
    allow: Option<Strings>,
    ask: Option<Strings>,
    deny: Option<Strings>,
    when: Option<Spanned<String>>,
    reason: Option<Spanned<String>>,
    approvers: Option<Strings>,
}

/// One rule as written, for summaries (`policy show`).
#[derive(Debug, Clone)]
pub struct Rule {
    name: String,
    decision: DecisionKind,
    actions: Vec<String>,
    functions: Vec<HostFunction>,
    when: Option<String>,
    /// The `when`, parsed.
    condition: Option<Expression>,
    reason: Option<String>,
    approvers: Vec<ApproverSpec>,
    line: usize,
}

impl Rule {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn decision(&self) -> DecisionKind {
        self.decision
    }

    /// The action patterns as written (`idp.groups`, `idp.*`, `*`).
    pub fn actions(&self) -> &[String] {
        &self.actions
    }

    /// The host functions those patterns cover.
    pub fn functions(&self) -> &[HostFunction] {
        &self.functions
    }

    /// The Cedar condition, if the rule has one.
    pub fn when(&self) -> Option<&str> {
        self.when.as_deref()
    }

    /// A deny rule's own sentence, if it has one.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// An ask rule's approvers, roles expanded; empty for allow and deny rules.
    pub fn approvers(&self) -> &[ApproverSpec] {
        &self.approvers
    }

    /// The line of the rule's `name` in the file.
    pub fn line(&self) -> usize {
        self.line
    }
}

/// A tenant's parsed and compiled policy. Cheap to share: decisions take `&self`.
#[derive(Debug, Clone)]
pub struct Policy {
    source: String,
    /// What deciding each side-effecting function needs, prepared once (see [`Slice`]).
    slices: HashMap<HostFunction, Slice, foldhash::fast::RandomState>,
    cedar: String,
    rules: Vec<Rule>,
    roles: BTreeMap<String, Vec<ApproverSpec>>,
    /// Lower-cased department name to (department as written, head's email).
    department_heads: HashMap<String, (String, String)>,
    approval_timeout: Duration,
    warnings: Vec<Problem>,
    /// Decisions made so far, by what they depend on.
    memo: Memo,
}

impl Policy {
    /// Parses, checks and compiles a rule file, reporting every problem found.
    pub fn parse(source: &str) -> Result<Policy, PolicyError> {
        let file: RuleFile = toml::from_str(source).map_err(|e| toml_error(source, &e))?;
        let mut report = Report::new(source);

        let approval_timeout = match &file.approval_timeout {
            None => DEFAULT_APPROVAL_TIMEOUT,
            Some(value) => parse_duration(value.get_ref()).unwrap_or_else(|message| {
                report.at(value.span().start, message);
                DEFAULT_APPROVAL_TIMEOUT
            }),
        };
        let roles = parse_roles(&file.approvers, &mut report);
        let department_heads = parse_department_heads(&file.department_heads, &mut report);

        let mut rules = Vec::new();
        let mut compiled = Vec::new();
        let mut first_lines: HashMap<&str, usize> = HashMap::new();
        for entry in &file.rule {
            let duplicate = entry.get_ref().name.as_ref().is_some_and(|name| {
                let text = name.get_ref().trim();
                let line = position(source, name.span().start).0;
                match first_lines.get(text) {
                    Some(first) => {
                        report.at(
                            name.span().start,
                            format!(
                                "rule name `{text}` is already used on line {first}; give \
                                 every rule its own name"
                            ),
                        );
                        true
                    }
                    None => {
                        first_lines.insert(text, line);
                        false
                    }
                }
            });
            let Some((rule, cedar)) = compile_rule(source, entry, &roles, &mut report) else {
                continue;
            };
            if duplicate {
                // Its `when` is still checked, so every problem shows at once.
                build_policy_set(std::slice::from_ref(&cedar), &mut report);
                continue;
            }
            rules.push(rule);
            compiled.push(cedar);
        }

        let (policies, warnings) = build_policy_set(&compiled, &mut report);
        let cedar = compiled
            .iter()
            .map(|c| c.text.as_str())
            .collect::<Vec<_>>()
            .join("\n\n");
        report.into_result()?;
        let slices = build_slices(&rules, &policies);
        Ok(Policy {
            source: source.to_owned(),
            slices,
            cedar,
            rules,
            roles,
            department_heads,
            approval_timeout,
            warnings,
            memo: Memo::default(),
        })
    }

    /// The shipped default policy.
    pub fn default_policy() -> Policy {
        Policy::parse(DEFAULT_SOURCE).expect("the shipped default policy parses")
    }

    /// The shipped default rule file.
    pub fn default_source() -> &'static str {
        DEFAULT_SOURCE
    }

    /// The rule file this policy was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// How long an `ask` waits for an approver.
    pub fn approval_timeout(&self) -> Duration {
        self.approval_timeout
    }

    /// The head of `department` per `[department_heads]`, ignoring case.
    pub fn department_head(&self, department: &str) -> Option<&str> {
        self.department_heads
            .get(&department.trim().to_lowercase())
            .map(|(_, head)| head.as_str())
    }

    /// Every `[department_heads]` entry: (department as written, head's email).
    pub fn department_heads(&self) -> impl Iterator<Item = (&str, &str)> {
        self.department_heads
            .values()
            .map(|(department, head)| (department.as_str(), head.as_str()))
    }

    /// The `[approvers]` roles, by name, each expanded.
    pub fn approver_roles(&self) -> impl Iterator<Item = (&str, &[ApproverSpec])> {
        self.roles
            .iter()
            .map(|(n, specs)| (n.as_str(), specs.as_slice()))
    }

    /// The rules, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Things that are allowed but probably not meant (a rule that can never match,
    /// confusable characters); `policy check` shows them.
    pub fn warnings(&self) -> &[Problem] {
        &self.warnings
    }

    /// The compiled Cedar policies, for people debugging a rule.
    pub fn cedar(&self) -> &str {
        &self.cedar
    }

    /// The Cedar schema rules are validated against.
    pub fn cedar_schema() -> &'static str {
        &VOCABULARY.schema_text
    }

    /// Decides one call: deny beats ask beats allow, and a call no rule allows is denied.
    pub fn decide(&self, request: &Request<'_>) -> Decision {
        if let Some(decision) = self.remembered(request) {
            return decision;
        }
        // Cedar refuses to evaluate when `stacker` says the stack is nearly used up. On
        // a wasmtime fiber (where host calls of a run execute) stacker cannot tell where
        // the stack ends and reports none left, so evaluate on a stack it knows.
        let decision =
            stacker::maybe_grow(POLICY_RED_ZONE, POLICY_STACK, || self.decide_here(request));
        let mut key = Vec::new();
        self.memo_key(request, &mut key);
        self.memo.insert(key, decision.clone());
        decision
    }

    /// Whether any rule covering `function` reads `context.time`: when none does, a
    /// caller need not read the clock for the request.
    pub fn reads_time(&self, function: HostFunction) -> bool {
        // Asked on every side-effecting call: find the leaves under `time` once.
        static TIME: LazyLock<ContextReads> = LazyLock::new(|| ContextReads::path(&["time"]));
        self.slices
            .get(&function)
            .is_some_and(|slice| slice.reads.intersects(*TIME))
    }

    /// The decision on a call whose facts (those the policy reads) were decided
    /// before, without evaluating anything: a look-up that needs no large stack, so a
    /// host call can make it on the run's fiber and leave it only when this is `None`.
    pub fn remembered(&self, request: &Request<'_>) -> Option<Decision> {
        thread_local! {
            // The key of a look-up, reused: most calls are answered here.
            static KEY: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        KEY.with_borrow_mut(|key| {
            key.clear();
            self.memo_key(request, key);
            self.memo.get(key)
        })
    }

    /// Writes into `key` everything a decision on `request` depends on: the function,
    /// the principal and resource (plugin and tenant), and the context leaves its
    /// slice's rules read. Calls that differ in nothing else are decided alike, because
    /// a rule's `when` sees only that context (see [`Slice`]).
    fn memo_key(&self, request: &Request<'_>, key: &mut Vec<u8>) {
        key.push(request.function as u8);
        Fact::Str(request.plugin).encode(key);
        Fact::Str(request.tenant).encode(key);
        if let Some(slice) = self.slices.get(&request.function) {
            for leaf in &slice.read_leaves {
                leaf(request).encode(key);
            }
        }
    }

    /// Decides with the function's [`Slice`]: the rules covering it, by line, the first
    /// matching deny rule ending the search. Cedar evaluates each `when` over only the
    /// context the slice reads, and a rule without one matches. The outcome is the one
    /// Cedar's authorizer gives for the whole policy set over the whole context
    /// (`tests::slices_decide_as_the_whole_policy_does` checks).
    fn decide_here(&self, request: &Request<'_>) -> Decision {
        let function = request.function;
        let Some(slice) = self.slices.get(&function) else {
            return Decision::Deny {
                rule: None,
                reason: format!(
                    "{function} only reads; the policy decides side-effecting calls, and reads \
                     are governed by the plugin's grants alone"
                ),
            };
        };
        // Built when the first `when` needs it.
        let mut cedar = None;
        let mut permits: Vec<&Rule> = Vec::new();
        // The first rule by line whose `when` could not be evaluated, and why.
        let mut failure: Option<(&Rule, String)> = None;
        for &i in &slice.rules {
            let rule = &self.rules[i];
            let matched = match &rule.condition {
                None => true,
                Some(condition) => {
                    let cedar_request = match &mut cedar {
                        Some(r) => r,
                        None => match cedar_request(request, &slice.action, slice.reads) {
                            Ok(r) => cedar.insert(r),
                            Err(e) => {
                                return Decision::Deny {
                                    rule: None,
                                    reason: format!(
                                        "capdesk could not describe the call to {function} to \
                                         the policy engine ({e}), so it is denied"
                                    ),
                                };
                            }
                        },
                    };
                    match cedar_policy::eval_expression(
                        cedar_request,
                        &VOCABULARY.actions,
                        condition,
                    ) {
                        Ok(EvalResult::Bool(matched)) => matched,
                        // Validation makes every `when` a Bool, so this does not happen.
                        Ok(value) => {
                            failure.get_or_insert((rule, format!("it gave {value}, not a Bool")));
                            false
                        }
                        Err(error) => {
                            failure.get_or_insert((rule, error.to_string()));
                            false
                        }
                    }
                }
            };
            if !matched {
                continue;
            }
            if rule.decision == DecisionKind::Deny {
                // Deny beats everything, and no later rule comes earlier in the file.
                let reason = match &rule.reason {
                    Some(reason) => format!("rule `{}` denies {function}: {reason}", rule.name),
                    None => format!("rule `{}` denies {function}", rule.name),
                };
                return Decision::Deny {
                    rule: Some(rule.name.clone()),
                    reason,
                };
            }
            permits.push(rule);
        }
        // Cedar skips a policy whose evaluation fails; a skipped deny rule must not
        // let a call through, so any failure denies.
        if let Some((rule, error)) = failure {
            // Named as Cedar prints a policy id, with quotes and backslashes escaped.
            let rule = PolicyId::new(&rule.name).to_string();
            return Decision::Deny {
                reason: format!(
                    "rule `{rule}` could not be evaluated ({error}), so {function} is denied; \
                     fix the rule's `when` condition"
                ),
                rule: Some(rule),
            };
        }
        let Some(first) = permits.first() else {
            return Decision::Deny {
                rule: None,
                reason: format!(
                    "no rule allows {function} here, and a call no rule allows is denied; \
                     add an allow or ask rule to the tenant's policy to permit it"
                ),
            };
        };
        let asks: Vec<&Rule> = permits
            .iter()
            .copied()
            .filter(|r| r.decision == DecisionKind::Ask)
            .collect();
        if let Some(first) = asks.first() {
            let mut approvers: Vec<ApproverSpec> = Vec::new();
            for spec in asks.iter().flat_map(|r| &r.approvers) {
                if !approvers.contains(spec) {
                    approvers.push(spec.clone());
                }
            }
            return Decision::Ask {
                rule: first.name.clone(),
                approvers,
            };
        }
        Decision::Allow {
            rule: first.name.clone(),
        }
    }
}

impl FromStr for Policy {
    type Err = PolicyError;

    fn from_str(source: &str) -> Result<Policy, PolicyError> {
        Policy::parse(source)
    }
}

fn toml_error(source: &str, error: &toml::de::Error) -> PolicyError {
    let mut report = Report::new(source);
    let message = error
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    report.at(error.span().map_or(0, |s| s.start), message);
    PolicyError {
        problems: report.problems,
    }
}

/// `"90m"`, `"4h"`, `"1d"`, `"30s"` or combinations like `"1h30m"`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "approval_timeout `{text}` is not a duration; write a number and a unit (s, m, h \
             or d), like \"90m\", \"4h\", \"1d\" or \"1h30m\""
        )
    };
    let mut total: u64 = 0;
    let mut number: Option<u64> = None;
    for c in text.trim().chars() {
        if let Some(digit) = c.to_digit(10) {
            let n = number.unwrap_or(0);
            number = Some(
                n.checked_mul(10)
                    .and_then(|n| n.checked_add(digit.into()))
                    .ok_or_else(bad)?,
            );
            continue;
        }
        if c.is_whitespace() && number.is_none() {
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n = number.take().ok_or_else(bad)?;
        total = n
            .checked_mul(unit)
            .and_then(|secs| total.checked_add(secs))
            .ok_or_else(bad)?;
    }
    if number.is_some() || text.trim().is_empty() {
        return Err(bad());
    }
    if total == 0 {
        return Err(format!(
            "approval_timeout `{text}` is zero; an approval needs time to arrive, like \"4h\""
        ));
    }
    Ok(Duration::from_secs(total))
}

/// An approver entry as written: a spec, or the name of a role.
enum ApproverEntry {
    Spec(ApproverSpec),
    Role(String),
}

const APPROVER_FORMS: &str = "\"manager\", \"department-head\", \"group:NAME\" or an email address";

fn parse_approver(text: &str) -> Result<ApproverEntry, String> {
    let text = text.trim();
    match text {
        "" => Err(format!("an approver is empty; write {APPROVER_FORMS}")),
        "manager" => Ok(ApproverEntry::Spec(ApproverSpec::Manager)),
        "department-head" => Ok(ApproverEntry::Spec(ApproverSpec::DepartmentHead)),
        _ => {
            if let Some(group) = text.strip_prefix("group:") {
                let group = group.trim();
                if group.is_empty() {
                    return Err(
                        "`group:` needs a directory group name, like \"group:Finance Approvers\""
                            .to_owned(),
                    );
                }
                return Ok(ApproverEntry::Spec(ApproverSpec::Group(group.to_owned())));
            }
            if text.contains('@') {
                if !is_email(text) {
                    return Err(format!(
                        "`{text}` is not an email address; write a person as name@domain"
                    ));
                }
                return Ok(ApproverEntry::Spec(ApproverSpec::Person(text.to_owned())));
            }
            Ok(ApproverEntry::Role(text.to_owned()))
        }
    }
}

fn is_email(text: &str) -> bool {
    match text.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !text.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

fn parse_roles(
    roles: &BTreeMap<String, Strings>,
    report: &mut Report<'_>,
) -> BTreeMap<String, Vec<ApproverSpec>> {
    let mut parsed = BTreeMap::new();
    for (name, entries) in roles {
        let at = entries.span().start;
        if matches!(name.as_str(), "manager" | "department-head")
            || name.contains([':', '@'])
            || name.trim().is_empty()
            || name.trim() != name
        {
            report.at(
                at,
                format!(
                    "`{name}` cannot name an approver role: \"manager\", \"department-head\", \
                     names with `:` or `@` and blank names mean something else; pick another name"
                ),
            );
            continue;
        }
        if entries.get_ref().is_empty() {
            report.at(
                at,
                format!("approver role `{name}` lists nobody; list {APPROVER_FORMS}"),
            );
        }
        let mut specs = Vec::new();
        for entry in entries.get_ref() {
            match parse_approver(entry.get_ref()) {
                Ok(ApproverEntry::Spec(spec)) => {
                    if !specs.contains(&spec) {
                        specs.push(spec);
                    }
                }
                Ok(ApproverEntry::Role(other)) => report.at(
                    entry.span().start,
                    format!(
                        "approver role `{name}` lists `{other}`, but a role may list only \
                         {APPROVER_FORMS}, not other roles; list those members directly"
                    ),
                ),
                Err(message) => report.at(entry.span().start, message),
            }
        }
        parsed.insert(name.clone(), specs);
    }
    parsed
}

fn parse_department_heads(
    heads: &BTreeMap<String, Spanned<String>>,
    report: &mut Report<'_>,
) -> HashMap<String, (String, String)> {
    let mut parsed: HashMap<String, (String, String)> = HashMap::new();
    for (department, head) in heads {
        let at = head.span().start;
        let email = head.get_ref().trim();
        if !is_email(email) {
            report.at(
                at,
                format!(
                    "the head of department `{department}` must be an email address, not `{}`",
                    head.get_ref()
                ),
            );
            continue;
        }
        let key = department.trim().to_lowercase();
        if let Some((other, _)) = parsed.get(&key) {
            report.at(
                at,
                format!(
                    "departments `{other}` and `{department}` differ only in case, and \
                     department names ignore case; keep one"
                ),
            );
            continue;
        }
        parsed.insert(key, (department.clone(), email.to_owned()));
    }
    parsed
}

// ---------------------------------------------------------------------------------------
// Compiling rules to Cedar
// ---------------------------------------------------------------------------------------

/// One rule's Cedar policy, with what is needed to map Cedar's diagnostics back to the
/// rule file.
struct CompiledRule {
    id: String,
    /// How messages name the rule (`rule `group-membership``).
    label: String,
    text: String,
    /// Byte offset of the `when` expression inside `text`.
    when_start: usize,
    when: Option<WhenSite>,
    /// Where in the rule file to report problems not inside the `when`.
    rule_offset: usize,
}

/// Where a `when` value sits in the rule file.
struct WhenSite {
    len: usize,
    /// Start of the value, quotes included.
    value_start: usize,
    /// Source offset of the expression's first byte, when the file spells the string
    /// without escapes so that offsets inside it map one-to-one.
    text_start: Option<usize>,
}

impl WhenSite {
    fn new(source: &str, value: &str, span: Range<usize>) -> WhenSite {
        let raw = source.get(span.clone()).unwrap_or("");
        let quote = if raw.starts_with("'''") || raw.starts_with("\"\"\"") {
            3
        } else {
            1
        };
        let mut text_start = None;
        if raw.len() >= 2 * quote {
            let mut start = span.start + quote;
            let mut inner = &raw[quote..raw.len() - quote];
            if quote == 3 {
                if let Some(rest) = inner.strip_prefix("\r\n") {
                    start += 2;
                    inner = rest;
                } else if let Some(rest) = inner.strip_prefix('\n') {
                    start += 1;
                    inner = rest;
                }
            }
            if inner == value {
                text_start = Some(start);
            }
        }
        WhenSite {
            len: value.len(),
            value_start: span.start,
            text_start,
        }
    }

    /// The source offset of byte `offset` of the expression.
    fn source_offset(&self, offset: usize) -> usize {
        match self.text_start {
            Some(start) => start + offset.min(self.len),
            None => self.value_start,
        }
    }
}

/// What one action pattern names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ActionPattern {
    Every,
    Interface(&'static str),
    Capability(Capability),
    Function(HostFunction),
}

impl ActionPattern {
    fn resolve(text: &str) -> Result<ActionPattern, String> {
        let text = text.trim();
        if text == "*" {
            return Ok(ActionPattern::Every);
        }
        if let Some(interface) = text.strip_suffix(".*")
            && let Some(&known) = VOCABULARY.interfaces.iter().find(|i| **i == interface)
        {
            return Ok(ActionPattern::Interface(known));
        }
        let read_only = || {
            format!(
                "`{text}` only reads, and rules decide side-effecting calls only (reads are \
                 governed by the plugin's grants); remove it"
            )
        };
        if let Ok(capability) = text.parse::<Capability>() {
            if !VOCABULARY.capabilities.contains(&capability) {
                return Err(read_only());
            }
            return Ok(ActionPattern::Capability(capability));
        }
        if let Some(&function) = FUNCTIONS.iter().find(|f| f.name() == text) {
            if !function.is_side_effecting() {
                return Err(read_only());
            }
            return Ok(ActionPattern::Function(function));
        }
        Err(format!(
            "unknown action `{text}`; known actions: {}",
            VOCABULARY.known_actions
        ))
    }

    /// The Cedar action group or call this pattern stands for; `None` for every action.
    fn cedar_uid(self) -> Option<String> {
        let id = match self {
            ActionPattern::Every => return None,
            ActionPattern::Interface(interface) => format!("interface:{interface}"),
            ActionPattern::Capability(c) => format!("capability:{}", c.name()),
            ActionPattern::Function(f) => format!("call:{}", f.name()),
        };
        Some(format!("{NAMESPACE}::Action::\"{id}\""))
    }

    fn covers(self, function: HostFunction) -> bool {
        function.is_side_effecting()
            && match self {
                ActionPattern::Every => true,
                ActionPattern::Interface(interface) => function.interface() == interface,
                ActionPattern::Capability(c) => function.capability() == c,
                ActionPattern::Function(f) => function == f,
            }
    }
}

/// Checks one `[[rule]]` and writes its Cedar policy. Returns `None` when the rule is
/// broken; its problems are in `report` either way.
fn compile_rule(
    source: &str,
    entry: &Spanned<RuleEntry>,
    roles: &BTreeMap<String, Vec<ApproverSpec>>,
    report: &mut Report<'_>,
) -> Option<(Rule, CompiledRule)> {
    let rule = entry.get_ref();
    let rule_offset = rule
        .name
        .as_ref()
        .map_or(entry.span().start, |n| n.span().start);
    let problems_before = report.problems.len();

    let name = rule_name(rule, entry.span().start, report);
    let label = name
        .as_deref()
        .map_or_else(|| "this rule".to_owned(), |n| format!("rule `{n}`"));
    let decisions: Vec<(DecisionKind, &Strings)> = [
        (DecisionKind::Allow, &rule.allow),
        (DecisionKind::Ask, &rule.ask),
        (DecisionKind::Deny, &rule.deny),
    ]
    .into_iter()
    .filter_map(|(kind, list)| list.as_ref().map(|l| (kind, l)))
    .collect();
    let decision = rule_decision(&decisions, &label, rule_offset, report);
    let (actions, patterns) = rule_actions(&decisions, &label, report);
    check_reason(rule, decision, &label, report);
    let approvers = rule_approvers(rule, decision, roles, &label, rule_offset, report);
    let when = rule.when.as_ref().map(|w| {
        let site = WhenSite::new(source, w.get_ref(), w.span());
        (w.get_ref().as_str(), site)
    });
    // `None` without a `when`, `Some(None)` when it does not parse.
    let condition = when
        .as_ref()
        .map(|(text, site)| check_when_syntax(text, site, &label, report));

    if report.problems.len() > problems_before {
        // Still validate the `when` of a broken rule, so its mistakes show too.
        if let Some((text, site)) = when
            && condition.is_none_or(|c| c.is_some())
        {
            let cedar = cedar_text(
                name.as_deref().unwrap_or("unnamed"),
                DecisionKind::Allow,
                &[],
                Some(text),
            );
            let probe = CompiledRule {
                id: name.unwrap_or_else(|| "unnamed".to_owned()),
                label,
                when_start: cedar.when_start,
                text: cedar.text,
                when: Some(site),
                rule_offset,
            };
            build_policy_set(std::slice::from_ref(&probe), report);
        }
        return None;
    }
    let (name, decision) = (name?, decision?);
    let cedar = cedar_text(&name, decision, &patterns, when.as_ref().map(|(t, _)| *t));
    let functions = FUNCTIONS
        .into_iter()
        .filter(|f| patterns.iter().any(|p| p.covers(*f)))
        .collect();
    Some((
        Rule {
            name: name.clone(),
            decision,
            actions,
            functions,
            when: when.as_ref().map(|(t, _)| (*t).to_owned()),
            condition: condition.flatten(),
            reason: rule.reason.as_ref().map(|r| r.get_ref().trim().to_owned()),
            approvers,
            line: position(source, rule_offset).0,
        },
        CompiledRule {
            id: name,
            label,
            when_start: cedar.when_start,
            text: cedar.text,
            when: when.map(|(_, site)| site),
            rule_offset,
        },
    ))
}

fn rule_name(rule: &RuleEntry, table_offset: usize, report: &mut Report<'_>) -> Option<String> {
    let Some(name) = &rule.name else {
        report.at(
            table_offset,
            "a rule has no `name`; give every rule a unique name, like name = \"group-membership\"",
        );
        return None;
    };
    let text = name.get_ref().trim();
    if text.is_empty() || text.chars().any(char::is_control) {
        report.at(
            name.span().start,
            "a rule name must be non-empty text on one line, like \"group-membership\"",
        );
        return None;
    }
    Some(text.to_owned())
}

/// The rule's one decision, from whichever of `allow`, `ask` and `deny` it has.
fn rule_decision(
    decisions: &[(DecisionKind, &Strings)],
    label: &str,
    rule_offset: usize,
    report: &mut Report<'_>,
) -> Option<DecisionKind> {
    match decisions {
        [] => {
            report.at(
                rule_offset,
                format!(
                    "{label} makes no decision; give it exactly one of `allow`, `ask` or `deny` \
                     with a list of actions"
                ),
            );
            None
        }
        [(kind, _)] => Some(*kind),
        [(first, _), (second, list), ..] => {
            report.at(
                list.span().start,
                format!(
                    "{label} has both `{first}` and `{second}`; a rule makes exactly one \
                     decision, so split it into two rules"
                ),
            );
            None
        }
    }
}

/// The action patterns as written and as resolved. Every pattern under every decision
/// key is checked, so all typos show at once.
fn rule_actions(
    decisions: &[(DecisionKind, &Strings)],
    label: &str,
    report: &mut Report<'_>,
) -> (Vec<String>, Vec<ActionPattern>) {
    let mut written = Vec::new();
    let mut patterns = Vec::new();
    for (kind, list) in decisions {
        if list.get_ref().is_empty() {
            report.at(
                list.span().start,
                format!(
                    "{label}: `{kind}` lists no actions; name at least one, or \"*\" for every \
                     action"
                ),
            );
        }
        for pattern in list.get_ref() {
            written.push(pattern.get_ref().trim().to_owned());
            match ActionPattern::resolve(pattern.get_ref()) {
                Ok(p) if !patterns.contains(&p) => patterns.push(p),
                Ok(_) => {}
                Err(message) => report.at(pattern.span().start, message),
            }
        }
    }
    (written, patterns)
}

fn check_reason(
    rule: &RuleEntry,
    decision: Option<DecisionKind>,
    label: &str,
    report: &mut Report<'_>,
) {
    let Some(reason) = &rule.reason else { return };
    if decision.is_some_and(|d| d != DecisionKind::Deny) {
        report.at(
            reason.span().start,
            format!("{label}: `reason` only applies to deny rules; remove it"),
        );
    } else if reason.get_ref().trim().is_empty() {
        report.at(
            reason.span().start,
            format!("{label}: `reason` is empty; write a sentence or remove it"),
        );
    }
}

/// An ask rule's approvers with roles expanded, deduplicated in order.
fn rule_approvers(
    rule: &RuleEntry,
    decision: Option<DecisionKind>,
    roles: &BTreeMap<String, Vec<ApproverSpec>>,
    label: &str,
    rule_offset: usize,
    report: &mut Report<'_>,
) -> Vec<ApproverSpec> {
    let mut approvers = Vec::new();
    let list = match (&rule.approvers, decision) {
        (None, Some(DecisionKind::Ask)) => {
            report.at(
                rule_offset,
                format!(
                    "{label} asks but names no approvers; add approvers = [...] with role names \
                     from [approvers] or {APPROVER_FORMS}"
                ),
            );
            return approvers;
        }
        (None, _) => return approvers,
        (Some(list), Some(kind)) if kind != DecisionKind::Ask => {
            report.at(
                list.span().start,
                format!(
                    "{label}: `approvers` only applies to ask rules; remove it, or make the \
                     rule `ask`"
                ),
            );
            return approvers;
        }
        (Some(list), _) => list,
    };
    if list.get_ref().is_empty() {
        report.at(
            list.span().start,
            format!("{label}: `approvers` is empty; name at least one approver"),
        );
    }
    for entry in list.get_ref() {
        match expand_approver(entry.get_ref(), roles) {
            Ok(specs) => {
                for spec in specs.iter() {
                    if !approvers.contains(spec) {
                        approvers.push(spec.clone());
                    }
                }
            }
            Err(message) => report.at(entry.span().start, message),
        }
    }
    approvers
}

/// One `approvers` entry of a rule: a spec, or a role's specs.
fn expand_approver<'r>(
    text: &str,
    roles: &'r BTreeMap<String, Vec<ApproverSpec>>,
) -> Result<std::borrow::Cow<'r, [ApproverSpec]>, String> {
    match parse_approver(text)? {
        ApproverEntry::Spec(spec) => Ok(std::borrow::Cow::Owned(vec![spec])),
        ApproverEntry::Role(role) => match roles.get(&role) {
            Some(specs) => Ok(std::borrow::Cow::Borrowed(specs)),
            None => {
                let known = if roles.is_empty() {
                    "the file defines no roles".to_owned()
                } else {
                    let names: Vec<&str> = roles.keys().map(String::as_str).collect();
                    format!("roles: {}", names.join(", "))
                };
                Err(format!(
                    "unknown approver `{role}`; use a role from [approvers] ({known}) or \
                     {APPROVER_FORMS}"
                ))
            }
        },
    }
}

/// Reports an empty `when` or Cedar syntax errors in it; the expression when it parses.
fn check_when_syntax(
    text: &str,
    site: &WhenSite,
    label: &str,
    report: &mut Report<'_>,
) -> Option<Expression> {
    if text.trim().is_empty() {
        report.at(
            site.value_start,
            format!("{label}: `when` is empty; write a condition or remove it"),
        );
        return None;
    }
    match Expression::from_str(text) {
        Ok(expression) => Some(expression),
        Err(errors) => {
            for error in errors.iter() {
                report_cedar(report, label, error, site, text, Some);
            }
            None
        }
    }
}

struct CedarText {
    text: String,
    when_start: usize,
}

/// The Cedar policy for one rule: `@id`, effect, action scope, and the `when` on lines
/// of its own (so a `//` comment in it cannot swallow the closing brace).
fn cedar_text(
    name: &str,
    decision: DecisionKind,
    patterns: &[ActionPattern],
    when: Option<&str>,
) -> CedarText {
    let escaped: String = name
        .chars()
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    let effect = match decision {
        DecisionKind::Deny => "forbid",
        DecisionKind::Allow | DecisionKind::Ask => "permit",
    };
    let uids: Option<Vec<String>> = patterns.iter().map(|p| p.cedar_uid()).collect();
    let action = match uids.as_deref() {
        None | Some([]) => "action".to_owned(),
        Some([one]) => format!("action in {one}"),
        Some(many) => format!("action in [{}]", many.join(", ")),
    };
    let mut text = format!("@id(\"{escaped}\")\n{effect}(principal, {action}, resource)");
    let mut when_start = text.len();
    if let Some(when) = when {
        text.push_str("\nwhen {\n");
        when_start = text.len();
        text.push_str(when);
        text.push_str("\n}");
    }
    text.push(';');
    CedarText { text, when_start }
}

/// Parses and validates the compiled rules as one Cedar policy set. Problems go to
/// `report`; the validator's warnings are returned.
fn build_policy_set(
    compiled: &[CompiledRule],
    report: &mut Report<'_>,
) -> (PolicySet, Vec<Problem>) {
    let mut set = PolicySet::new();
    let mut by_id = HashMap::new();
    for rule in compiled {
        let label = &rule.label;
        match cedar_policy::Policy::parse(Some(PolicyId::new(&rule.id)), &rule.text) {
            Ok(policy) => {
                if let Err(e) = set.add(policy) {
                    report.at(rule.rule_offset, format!("{label}: {e}"));
                }
                by_id.insert(rule.id.as_str(), rule);
            }
            Err(errors) => {
                for error in errors.iter() {
                    match &rule.when {
                        Some(site) => {
                            let when = &rule.text[rule.when_start..rule.when_start + site.len];
                            report_cedar(report, label, error, site, when, |o| {
                                o.checked_sub(rule.when_start)
                            });
                        }
                        None => report.at(rule.rule_offset, format!("{label}: {error}")),
                    }
                }
            }
        }
    }
    let validation =
        Validator::new(VOCABULARY.schema.clone()).validate(&set, ValidationMode::Strict);
    let mut warnings = Report::new(report.source);
    for error in validation.validation_errors() {
        if let Some(rule) = by_id.get(AsRef::<str>::as_ref(error.policy_id())) {
            report_rule_diagnostic(report, rule, error);
        }
    }
    for warning in validation.validation_warnings() {
        let id = warning.policy_id().to_string();
        if let Some(rule) = by_id.get(id.as_str()) {
            report_rule_diagnostic(&mut warnings, rule, warning);
        }
    }
    warnings.problems.sort_by_key(|p| (p.line, p.column));
    (set, warnings.problems)
}

fn report_rule_diagnostic(
    report: &mut Report<'_>,
    rule: &CompiledRule,
    diagnostic: &dyn Diagnostic,
) {
    let label = &rule.label;
    match &rule.when {
        Some(site) => {
            let when = &rule.text[rule.when_start..rule.when_start + site.len];
            let start = rule.when_start;
            report_cedar(report, label, diagnostic, site, when, |o| {
                o.checked_sub(start).filter(|o| *o <= site.len)
            });
        }
        None => report.at(
            rule.rule_offset,
            format!("{label}: {}", cedar_sentence(diagnostic)),
        ),
    }
}

/// Reports one Cedar diagnostic about a `when`. `to_when` maps an offset in the text
/// Cedar saw to an offset in the `when` expression, if it falls inside it.
fn report_cedar(
    report: &mut Report<'_>,
    label: &str,
    diagnostic: &dyn Diagnostic,
    site: &WhenSite,
    when: &str,
    to_when: impl Fn(usize) -> Option<usize>,
) {
    let span = diagnostic
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|l| (l.offset(), l.len(), l.label().map(str::to_owned)));
    let mut message = format!("{label}: in `when`, {}", cedar_sentence(diagnostic));
    let mut offset = site.value_start;
    if let Some((start, len, note)) = span {
        if let Some(note) = note {
            let _ = write!(message, " ({note})");
        }
        if let Some(inner) = to_when(start) {
            offset = site.source_offset(inner);
            let end = (inner + len).min(when.len());
            if let Some(snippet) = when.get(inner..end).filter(|s| !s.trim().is_empty())
                && snippet.len() < when.len()
            {
                let _ = write!(message, " at `{snippet}`");
            }
        }
    }
    match diagnostic.help() {
        Some(help) => {
            let help = strip_policy_mentions(&help.to_string());
            let _ = write!(message, "; {help}");
        }
        None => message.push_str(
            "; fix the condition (the attributes rules may use are listed in the comments of \
             the default policy)",
        ),
    }
    report.at(offset, message);
}

/// Cedar's message, without its mentions of policy ids and internal action names
/// (the caller names the rule).
fn cedar_sentence(diagnostic: &dyn Diagnostic) -> String {
    strip_policy_mentions(&diagnostic.to_string())
}

fn strip_policy_mentions(text: &str) -> String {
    let mut text = text.to_owned();
    // "for policy `name`, " prefixes.
    while let Some(start) = text.find("for policy `") {
        let rest = &text[start + "for policy `".len()..];
        let Some(end) = rest.find("`, ") else { break };
        let cut = start + "for policy `".len() + end + "`, ".len();
        text.replace_range(start..cut, "");
    }
    // " for Capdesk::Action::\"call:...\"" after "in context".
    let marker = format!(" for {NAMESPACE}::Action::\"");
    while let Some(start) = text.find(&marker) {
        let rest = &text[start + marker.len()..];
        let Some(end) = rest.find('"') else { break };
        text.replace_range(start..start + marker.len() + end + 1, "");
    }
    text
}

// ---------------------------------------------------------------------------------------
// The Cedar vocabulary: schema, action entities, names. Built once per process.
// ---------------------------------------------------------------------------------------

struct Vocabulary {
    schema_text: String,
    schema: Schema,
    /// The action entities and their group memberships.
    actions: Entities,
    plugin_type: EntityTypeName,
    tenant_type: EntityTypeName,
    /// The Cedar action of every side-effecting function.
    calls: HashMap<HostFunction, EntityUid>,
    /// Interfaces with side-effecting functions, in `FUNCTIONS` order.
    interfaces: Vec<&'static str>,
    /// Capabilities of side-effecting functions, in `Capability::ALL` order.
    capabilities: Vec<Capability>,
    /// For "unknown action" errors.
    known_actions: String,
}

static VOCABULARY: LazyLock<Vocabulary> = LazyLock::new(Vocabulary::build);

const CONTEXT_TYPES: &str = r#"
  entity Plugin;
  entity Tenant;
  type Requester = { email: String, verified: Bool, is_target: Bool };
  type Target = {
    exists: Bool, email: String, privileged: Bool, enabled: Bool, department: String,
    manager: String, groups: Set<String>, licenses: Set<String>
  };
  type Ticket = { id: String, category: String, channel: String, subject: String };
  type Time = { hour: Long, weekday: String };
  type Call = {
    requester: Requester, target: Target, ticket: Ticket, group: String, license: String,
    mailbox: String, right: String, recipient: String, time: Time
  };
"#;

impl Vocabulary {
    fn build() -> Vocabulary {
        let governed: Vec<HostFunction> = FUNCTIONS
            .into_iter()
            .filter(|f| f.is_side_effecting())
            .collect();
        let mut interfaces: Vec<&'static str> = Vec::new();
        for f in &governed {
            if !interfaces.contains(&f.interface()) {
                interfaces.push(f.interface());
            }
        }
        let capabilities: Vec<Capability> = Capability::ALL
            .into_iter()
            .filter(|c| governed.iter().any(|f| f.capability() == *c))
            .collect();

        let mut schema_text = format!("namespace {NAMESPACE} {{{CONTEXT_TYPES}");
        for interface in &interfaces {
            let _ = writeln!(schema_text, "  action \"interface:{interface}\";");
        }
        for capability in &capabilities {
            let _ = writeln!(
                schema_text,
                "  action \"capability:{}\";",
                capability.name()
            );
        }
        for f in &governed {
            let _ = writeln!(
                schema_text,
                "  action \"call:{}\" in [Action::\"capability:{}\", Action::\"interface:{}\"]\n    \
                 appliesTo {{ principal: Plugin, resource: Tenant, context: Call }};",
                f.name(),
                f.capability().name(),
                f.interface()
            );
        }
        schema_text.push_str("}\n");

        let (schema, _warnings) =
            Schema::from_cedarschema_str(&schema_text).expect("the built-in Cedar schema parses");
        let actions = schema
            .action_entities()
            .expect("the built-in Cedar schema's actions form entities");
        let type_name = |name: &str| {
            EntityTypeName::from_str(&format!("{NAMESPACE}::{name}"))
                .expect("built-in entity type names parse")
        };
        let action_type = type_name("Action");
        let calls = governed
            .iter()
            .map(|f| {
                let uid = EntityUid::from_type_name_and_id(
                    action_type.clone(),
                    EntityId::new(format!("call:{}", f.name())),
                );
                (*f, uid)
            })
            .collect();

        let mut known = vec!["*".to_owned()];
        known.extend(interfaces.iter().map(|i| format!("{i}.*")));
        known.extend(capabilities.iter().map(|c| c.name().to_owned()));
        for f in &governed {
            if !known.iter().any(|k| k == f.name()) {
                known.push(f.name().to_owned());
            }
        }

        Vocabulary {
            schema,
            actions,
            plugin_type: type_name("Plugin"),
            tenant_type: type_name("Tenant"),
            calls,
            interfaces,
            capabilities,
            known_actions: known.join(", "),
            schema_text,
        }
    }
}

/// How many decisions a policy remembers before it starts over.
const MEMO_CAPACITY: usize = 4096;

/// Decisions a policy has made, keyed by [`Policy::memo_key`]. A decision is a pure
/// function of the policy and that key, so a remembered one is the one Cedar would give
/// again; most calls repeat a handful of keys (the default policy reads four booleans
/// and the category), and one that reads something unbounded (a ticket id, a target's
/// email) only fills the memo, which is then emptied. A copy of a policy starts empty.
#[derive(Default)]
struct Memo(Mutex<HashMap<Vec<u8>, Decision, foldhash::fast::RandomState>>);

impl Memo {
    fn get(&self, key: &[u8]) -> Option<Decision> {
        self.lock().get(key).cloned()
    }

    fn insert(&self, key: Vec<u8>, decision: Decision) {
        let mut memo = self.lock();
        if memo.len() >= MEMO_CAPACITY {
            memo.clear();
        }
        memo.insert(key, decision);
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Decision, foldhash::fast::RandomState>> {
        // A panic while holding the lock leaves a map of whole entries.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Clone for Memo {
    fn clone(&self) -> Memo {
        Memo::default()
    }
}

impl fmt::Debug for Memo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Memo({} decisions)", self.lock().len())
    }
}

// ---------------------------------------------------------------------------------------
// Deciding one function: slices of the policy
// ---------------------------------------------------------------------------------------

/// What deciding calls to one side-effecting function needs, prepared at parse time so
/// that a decision looks at as little as possible. A rule whose action patterns do not
/// cover the function cannot match it: its action scope is false, so Cedar does not
/// evaluate its `when`, which then cannot fail either. A rule that does cover it
/// matches exactly when its `when` is true (or it has none).
#[derive(Debug, Clone)]
struct Slice {
    /// The function's Cedar action.
    action: EntityUid,
    /// The rules covering the function (indexes in `Policy::rules`), by line.
    rules: Vec<usize>,
    /// The context attributes their `when`s may read; the others are not built.
    reads: ContextReads,
    /// The leaves in `reads`: with the plugin and tenant, everything a decision on the
    /// function depends on, and so what a remembered one is keyed by.
    read_leaves: Vec<Leaf>,
}

/// The slice of every side-effecting function; `policies` holds each rule's policy.
fn build_slices(
    rules: &[Rule],
    policies: &PolicySet,
) -> HashMap<HostFunction, Slice, foldhash::fast::RandomState> {
    let reads: Vec<ContextReads> = rules
        .iter()
        .map(|rule| match rule.condition {
            None => ContextReads::NONE,
            Some(_) => policies
                .policy(&PolicyId::new(&rule.name))
                .and_then(|policy| policy.to_pst().ok())
                .map_or(ContextReads::ALL, |policy| ContextReads::of_policy(&policy)),
        })
        .collect();
    let mut by_line: Vec<usize> = (0..rules.len()).collect();
    by_line.sort_by_key(|&i| rules[i].line);
    VOCABULARY
        .calls
        .iter()
        .map(|(&function, action)| {
            let covering: Vec<usize> = by_line
                .iter()
                .copied()
                .filter(|&i| rules[i].functions.contains(&function))
                .collect();
            let reads = covering
                .iter()
                .fold(ContextReads::NONE, |all, &i| all.union(reads[i]));
            let slice = Slice {
                action: action.clone(),
                reads,
                read_leaves: leaves_in(reads),
                rules: covering,
            };
            (function, slice)
        })
        .collect()
}

/// Some of the context's attributes: one bit per [`CONTEXT`] leaf, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ContextReads(u32);

impl ContextReads {
    const NONE: ContextReads = ContextReads(0);
    const ALL: ContextReads = ContextReads((1 << CONTEXT_LEAVES) - 1);

    fn union(self, other: ContextReads) -> ContextReads {
        ContextReads(self.0 | other.0)
    }

    fn intersects(self, other: ContextReads) -> bool {
        self.0 & other.0 != 0
    }

    fn has(self, leaf: usize) -> bool {
        self.0 & (1 << leaf) != 0
    }

    /// Everything under `context.<path>`; everything when the path is not a known
    /// attribute (validation rules that out, but then nothing is left out).
    fn path(path: &[&str]) -> ContextReads {
        let Some((first, rest)) = path.split_first() else {
            return ContextReads::ALL;
        };
        let mut leaf = 0;
        for (name, attribute) in &CONTEXT {
            let fields = match attribute {
                Attribute::Value(_) => &[][..],
                Attribute::Record(fields) => fields,
            };
            let width = fields.len().max(1);
            if name == first {
                return match (rest.first(), attribute) {
                    (None, _) => ContextReads(((1 << width) - 1) << leaf),
                    (Some(field), Attribute::Record(fields)) => fields
                        .iter()
                        .position(|(f, _)| f == field)
                        .map_or(ContextReads::ALL, |i| ContextReads(1 << (leaf + i))),
                    // A string has no attributes.
                    (Some(_), Attribute::Value(_)) => ContextReads::ALL,
                };
            }
            leaf += width;
        }
        ContextReads::ALL
    }

    /// What a policy's conditions may read.
    fn of_policy(policy: &pst::Policy) -> ContextReads {
        policy
            .body()
            .clauses()
            .iter()
            .map(|clause| match clause {
                pst::Clause::When(e) | pst::Clause::Unless(e) => ContextReads::of(e),
            })
            .fold(ContextReads::NONE, ContextReads::union)
    }

    /// What an expression may read. `context.a.b` reads what is under `a.b`; `context`
    /// or a part of it used any other way (`context.target == ...`, `context has group`,
    /// `if .. then context.target else ..`) reads all of that part. Anything not known
    /// here reads everything.
    fn of(expr: &pst::Expr) -> ContextReads {
        use pst::Expr as E;
        let all = |exprs: &mut dyn Iterator<Item = &pst::Expr>| {
            exprs.fold(ContextReads::NONE, |reads, e| {
                reads.union(ContextReads::of(e))
            })
        };
        match expr {
            E::GetAttr { .. } => {
                let mut path = Vec::new();
                let mut base = expr;
                while let E::GetAttr { expr, attr } = base {
                    path.push(attr.as_str());
                    base = expr;
                }
                if matches!(base, E::Var(pst::Var::Context)) {
                    path.reverse();
                    ContextReads::path(&path)
                } else {
                    ContextReads::of(base)
                }
            }
            E::Var(pst::Var::Context) => ContextReads::ALL,
            E::Var(_) | E::Literal(_) | E::Slot(_) => ContextReads::NONE,
            E::UnaryOp { expr, .. } | E::HasAttr { expr, .. } | E::Like { expr, .. } => {
                ContextReads::of(expr)
            }
            E::BinaryOp { left, right, .. } => {
                ContextReads::of(left).union(ContextReads::of(right))
            }
            E::Is { expr, in_expr, .. } => {
                all(&mut std::iter::once(&**expr).chain(in_expr.as_deref()))
            }
            E::IfThenElse {
                cond,
                then_expr,
                else_expr,
            } => all(&mut [cond, then_expr, else_expr].into_iter().map(|e| &**e)),
            E::Set(items) => all(&mut items.iter().map(|e| &**e)),
            E::Record(fields) => all(&mut fields.values().map(|e| &**e)),
            _ => ContextReads::ALL,
        }
    }
}

/// One context attribute: a record of named leaves, or a leaf.
enum Attribute {
    Record(&'static [(&'static str, Leaf)]),
    Value(Leaf),
}

/// Reads one leaf of the context from the call.
type Leaf = for<'r> fn(&'r Request<'_>) -> Fact<'r>;

/// The value of one context leaf, borrowed from the call: what Cedar is given (as a
/// [`RestrictedExpression`]) and what a remembered decision is keyed by.
#[derive(Debug, Clone, Copy)]
enum Fact<'r> {
    Bool(bool),
    Long(i64),
    Str(&'r str),
    Strs(&'r [String]),
}

impl Fact<'_> {
    fn expression(self) -> RestrictedExpression {
        match self {
            Fact::Bool(b) => RestrictedExpression::new_bool(b),
            Fact::Long(n) => RestrictedExpression::new_long(n),
            Fact::Str(s) => RestrictedExpression::new_string(s.to_owned()),
            Fact::Strs(values) => RestrictedExpression::new_set(
                values
                    .iter()
                    .map(|v| RestrictedExpression::new_string(v.clone())),
            ),
        }
    }

    /// Appends the fact to a memo key; every encoding says its kind and length, so
    /// two different sequences of facts never make the same key.
    fn encode(self, key: &mut Vec<u8>) {
        fn text(key: &mut Vec<u8>, s: &str) {
            key.extend_from_slice(&(s.len() as u64).to_le_bytes());
            key.extend_from_slice(s.as_bytes());
        }
        match self {
            Fact::Bool(b) => key.extend_from_slice(&[0, u8::from(b)]),
            Fact::Long(n) => {
                key.push(1);
                key.extend_from_slice(&n.to_le_bytes());
            }
            Fact::Str(s) => {
                key.push(2);
                text(key, s);
            }
            Fact::Strs(values) => {
                key.push(3);
                key.extend_from_slice(&(values.len() as u64).to_le_bytes());
                for v in values {
                    text(key, v);
                }
            }
        }
    }
}

/// The context a call is described by, attribute by attribute; it is the schema's
/// `Call` type (`CONTEXT_TYPES`), as `tests::contexts_match_the_schema` checks.
const CONTEXT: [(&str, Attribute); 9] = [
    (
        "requester",
        Attribute::Record(&[
            ("email", |r| Fact::Str(r.requester.email)),
            ("verified", |r| Fact::Bool(r.requester.verified)),
            ("is_target", |r| Fact::Bool(r.requester_is_target())),
        ]),
    ),
    (
        "target",
        Attribute::Record(&[
            ("exists", |r| Fact::Bool(r.target.is_some())),
            ("email", |r| Fact::Str(target(r).email)),
            ("privileged", |r| Fact::Bool(target(r).privileged)),
            ("enabled", |r| Fact::Bool(target(r).enabled)),
            ("department", |r| Fact::Str(target(r).department)),
            ("manager", |r| Fact::Str(target(r).manager)),
            ("groups", |r| Fact::Strs(target(r).groups)),
            ("licenses", |r| Fact::Strs(target(r).licenses)),
        ]),
    ),
    (
        "ticket",
        Attribute::Record(&[
            ("id", |r| Fact::Str(r.ticket.id)),
            ("category", |r| Fact::Str(r.category)),
            ("channel", |r| Fact::Str(r.ticket.channel)),
            ("subject", |r| Fact::Str(r.ticket.subject)),
        ]),
    ),
    (
        "group",
        Attribute::Value(|r| Fact::Str(r.group.unwrap_or(""))),
    ),
    (
        "license",
        Attribute::Value(|r| Fact::Str(r.license.unwrap_or(""))),
    ),
    (
        "mailbox",
        Attribute::Value(|r| Fact::Str(r.mailbox.unwrap_or(""))),
    ),
    (
        "right",
        Attribute::Value(|r| Fact::Str(r.right.unwrap_or(""))),
    ),
    (
        "recipient",
        Attribute::Value(|r| Fact::Str(r.recipient.unwrap_or(""))),
    ),
    (
        "time",
        Attribute::Record(&[
            ("hour", |r| Fact::Long(r.time.hour.into())),
            ("weekday", |r| Fact::Str(r.time.weekday.name())),
        ]),
    ),
];

/// How many leaves [`CONTEXT`] has.
const CONTEXT_LEAVES: usize = {
    let mut leaves = 0;
    let mut i = 0;
    while i < CONTEXT.len() {
        leaves += match CONTEXT[i].1 {
            Attribute::Record(fields) => fields.len(),
            Attribute::Value(_) => 1,
        };
        i += 1;
    }
    leaves
};

/// The leaves in `reads`, in [`CONTEXT`] order.
fn leaves_in(reads: ContextReads) -> Vec<Leaf> {
    CONTEXT
        .iter()
        .flat_map(|(_, attribute)| match attribute {
            Attribute::Record(fields) => fields.iter().map(|(_, leaf)| *leaf).collect(),
            Attribute::Value(leaf) => vec![*leaf],
        })
        .enumerate()
        .filter(|&(i, _)| reads.has(i))
        .map(|(_, leaf)| leaf)
        .collect()
}

/// The target of a call that changes no user: absent, with every attribute empty.
const NO_TARGET: Target<'static> = Target {
    email: "",
    privileged: false,
    enabled: false,
    department: "",
    manager: "",
    groups: &[],
    licenses: &[],
};

fn target<'r>(request: &'r Request<'_>) -> &'r Target<'r> {
    request.target.as_ref().unwrap_or(&NO_TARGET)
}

/// The Cedar request for one call, its context holding the attributes in `reads`. The
/// schema check at construction is skipped: a whole context is checked by the test
/// `contexts_match_the_schema`, and a partial one holds what the rules read, as
/// validated at parse time.
fn cedar_request(
    request: &Request<'_>,
    action: &EntityUid,
    reads: ContextReads,
) -> Result<cedar_policy::Request, Box<dyn std::error::Error>> {
    let context = Context::from_pairs(context_pairs_reading(request, reads)?)?;
    let principal = EntityUid::from_type_name_and_id(
        VOCABULARY.plugin_type.clone(),
        EntityId::new(request.plugin),
    );
    let resource = EntityUid::from_type_name_and_id(
        VOCABULARY.tenant_type.clone(),
        EntityId::new(request.tenant),
    );
    Ok(cedar_policy::Request::new(
        principal,
        action.clone(),
        resource,
        context,
        None,
    )?)
}

/// The whole context of a call.
#[cfg(test)]
fn context_pairs(
    request: &Request<'_>,
) -> Result<Vec<(String, RestrictedExpression)>, Box<dyn std::error::Error>> {
    context_pairs_reading(request, ContextReads::ALL)
}

/// The context attributes in `reads`: a record holds only its fields in `reads`, and is
/// left out when it has none.
fn context_pairs_reading(
    request: &Request<'_>,
    reads: ContextReads,
) -> Result<Vec<(String, RestrictedExpression)>, Box<dyn std::error::Error>> {
    let mut pairs = Vec::new();
    let mut leaf = 0;
    for (name, attribute) in &CONTEXT {
        match attribute {
            Attribute::Value(value) => {
                if reads.has(leaf) {
                    pairs.push(((*name).to_owned(), value(request).expression()));
                }
                leaf += 1;
            }
            Attribute::Record(fields) => {
                let mut record = Vec::new();
                for (field, value) in *fields {
                    if reads.has(leaf) {
                        record.push(((*field).to_owned(), value(request).expression()));
                    }
                    leaf += 1;
                }
                if !record.is_empty() {
                    pairs.push((
                        (*name).to_owned(),
                        RestrictedExpression::new_record(record)?,
                    ));
                }
            }
        }
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: &str = "olivia@acme.test";

    fn groups() -> Vec<String> {
        vec!["Sales".to_owned()]
    }

    /// A verified requester acting on their own, ordinary account.
    fn owner_call(function: HostFunction) -> Request<'static> {
        let mut request = Request::new("acme", "password-reset", function, "password-reset");
        request.ticket = TicketFacts {
            id: "T-1",
            channel: "email",
            subject: "locked out",
        };
        request.requester = Requester {
            email: OWNER,
            verified: true,
        };
        request.target = Some(Target {
            email: "Olivia@Acme.test",
            enabled: true,
            department: "Sales",
            manager: "mark@acme.test",
            ..Target::default()
        });
        request
    }

    fn parse_err(source: &str) -> PolicyError {
        match Policy::parse(source) {
            Ok(_) => panic!("expected the policy to be rejected:\n{source}"),
            Err(e) => e,
        }
    }

    /// The single problem's line and message.
    fn only_problem(source: &str) -> (usize, String) {
        let error = parse_err(source);
        assert_eq!(error.problems().len(), 1, "{error}");
        let p = &error.problems()[0];
        (p.line, p.message.clone())
    }

    fn decide(source: &str, request: &Request<'_>) -> Decision {
        Policy::parse(source)
            .unwrap_or_else(|e| panic!("{e}"))
            .decide(request)
    }

    #[test]
    fn every_host_function_is_listed() {
        // Adding a host function breaks this match: list it in FUNCTIONS too.
        for f in FUNCTIONS {
            match f {
                HostFunction::FindUser
                | HostFunction::VerifyIdentity
                | HostFunction::UnlockAccount
                | HostFunction::ResetPassword
                | HostFunction::RequireMfaReregistration
                | HostFunction::RevokeSessions
                | HostFunction::AddGroupMember
                | HostFunction::RemoveGroupMember
                | HostFunction::AssignLicense
                | HostFunction::RemoveLicense
                | HostFunction::GrantMailboxAccess
                | HostFunction::RemoveMailboxAccess
                | HostFunction::GetTicket
                | HostFunction::AddNote
                | HostFunction::SetStatus
                | HostFunction::LinkToParent
                | HostFunction::ChatSend
                | HostFunction::ChatAsk => {}
            }
        }
        let mut names: Vec<&str> = FUNCTIONS.iter().map(|f| f.name()).collect();
        names.dedup();
        assert_eq!(names.len(), FUNCTIONS.len());
    }

    #[test]
    fn policy_is_shareable_across_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Policy>();
    }

    #[test]
    fn the_default_policy_parses_cleanly() {
        let policy = Policy::default_policy();
        assert_eq!(policy.source(), DEFAULT_SOURCE);
        assert_eq!(policy.approval_timeout(), Duration::from_secs(4 * 3600));
        assert!(policy.warnings().is_empty(), "{:?}", policy.warnings());
        let summary: Vec<(&str, DecisionKind)> = policy
            .rules()
            .iter()
            .map(|r| (r.name(), r.decision()))
            .collect();
        assert_eq!(
            summary,
            [
                ("privileged-accounts", DecisionKind::Deny),
                ("security-incidents", DecisionKind::Deny),
                ("identity-checks", DecisionKind::Allow),
                ("owner-self-service", DecisionKind::Allow),
                ("license-changes", DecisionKind::Ask),
                ("mailbox-delegation", DecisionKind::Ask),
                ("group-membership", DecisionKind::Ask),
                ("tickets-and-chat", DecisionKind::Allow),
            ]
        );
        let finance: Vec<_> = policy.approver_roles().collect();
        assert_eq!(
            finance[0],
            (
                "finance",
                &[ApproverSpec::Group("Finance Approvers".into())][..]
            )
        );
    }

    #[test]
    fn a_verified_owner_may_unlock_reset_and_sign_out_their_own_account() {
        let policy = Policy::default_policy();
        for function in [
            HostFunction::UnlockAccount,
            HostFunction::ResetPassword,
            HostFunction::RequireMfaReregistration,
            HostFunction::RevokeSessions,
        ] {
            assert_eq!(
                policy.decide(&owner_call(function)),
                Decision::Allow {
                    rule: "owner-self-service".into()
                },
                "{function}"
            );
        }
    }

    #[test]
    fn an_unverified_requester_or_someone_else_is_denied_by_default() {
        let policy = Policy::default_policy();
        let mut unverified = owner_call(HostFunction::UnlockAccount);
        unverified.requester.verified = false;
        let mut colleague = owner_call(HostFunction::UnlockAccount);
        colleague.requester.email = "carl@acme.test";
        for request in [unverified, colleague] {
            let decision = policy.decide(&request);
            let Decision::Deny { rule: None, reason } = &decision else {
                panic!("expected a default deny, got {decision:?}");
            };
            assert!(
                reason.contains("no rule allows idp.unlock-account"),
                "{reason}"
            );
        }
    }

    #[test]
    fn an_empty_requester_email_is_never_the_target() {
        let mut request = owner_call(HostFunction::UnlockAccount);
        request.requester.email = "";
        request.target = Some(Target::default());
        assert!(!request.requester_is_target());
        assert!(matches!(
            Policy::default_policy().decide(&request),
            Decision::Deny { rule: None, .. }
        ));
    }

    #[test]
    fn privileged_accounts_are_never_changed_even_by_their_verified_owner() {
        let policy = Policy::default_policy();
        for function in [HostFunction::UnlockAccount, HostFunction::AddGroupMember] {
            let mut request = owner_call(function);
            if let Some(target) = &mut request.target {
                target.privileged = true;
            }
            let decision = policy.decide(&request);
            let Decision::Deny {
                rule: Some(rule),
                reason,
            } = &decision
            else {
                panic!("expected a deny, got {decision:?}");
            };
            assert_eq!(rule, "privileged-accounts");
            assert!(
                reason.contains("privileged-accounts")
                    && reason.contains("never changes privileged accounts"),
                "{reason}"
            );
        }
    }

    #[test]
    fn group_changes_ask_the_manager_or_department_head() {
        let mut request = owner_call(HostFunction::AddGroupMember);
        request.group = Some("Sales Leads");
        assert_eq!(
            Policy::default_policy().decide(&request),
            Decision::Ask {
                rule: "group-membership".into(),
                approvers: vec![ApproverSpec::Manager, ApproverSpec::DepartmentHead],
            }
        );
        request.function = HostFunction::GrantMailboxAccess;
        assert_eq!(
            Policy::default_policy().decide(&request).rule(),
            Some("mailbox-delegation")
        );
    }

    #[test]
    fn license_changes_ask_finance() {
        let mut request = owner_call(HostFunction::AssignLicense);
        request.license = Some("E5");
        assert_eq!(
            Policy::default_policy().decide(&request),
            Decision::Ask {
                rule: "license-changes".into(),
                approvers: vec![ApproverSpec::Group("Finance Approvers".into())],
            }
        );
    }

    #[test]
    fn security_incidents_are_denied_whatever_the_call() {
        let policy = Policy::default_policy();
        for function in [HostFunction::UnlockAccount, HostFunction::AddNote] {
            let mut request = owner_call(function);
            request.category = "security-incident";
            assert_eq!(policy.decide(&request).rule(), Some("security-incidents"));
            assert_eq!(policy.decide(&request).kind(), DecisionKind::Deny);
        }
    }

    #[test]
    fn ticket_notes_and_chat_are_allowed() {
        let policy = Policy::default_policy();
        let allowed = Decision::Allow {
            rule: "tickets-and-chat".into(),
        };
        assert_eq!(policy.decide(&owner_call(HostFunction::AddNote)), allowed);
        let mut chat = Request::new("acme", "password-reset", HostFunction::ChatSend, "x");
        chat.recipient = Some(OWNER);
        assert_eq!(policy.decide(&chat), allowed);
    }

    #[test]
    fn reads_are_not_decided_by_policy() {
        let decision = Policy::default_policy().decide(&owner_call(HostFunction::FindUser));
        let Decision::Deny { rule: None, reason } = decision else {
            panic!("{decision:?}");
        };
        assert!(reason.contains("only reads"), "{reason}");
    }

    #[test]
    fn decisions_serialize_with_kebab_case_tags() {
        let ask = Decision::Ask {
            rule: "r".into(),
            approvers: vec![
                ApproverSpec::DepartmentHead,
                ApproverSpec::Group("Finance Approvers".into()),
                ApproverSpec::Person("fiona@acme.test".into()),
            ],
        };
        let json = serde_json::to_value(&ask).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "decision": "ask",
                "rule": "r",
                "approvers": [
                    {"kind": "department-head"},
                    {"kind": "group", "name": "Finance Approvers"},
                    {"kind": "person", "name": "fiona@acme.test"},
                ],
            })
        );
        assert_eq!(serde_json::from_value::<Decision>(json).unwrap(), ask);
        let deny = Decision::Deny {
            rule: None,
            reason: "no".into(),
        };
        assert_eq!(
            serde_json::to_value(&deny).unwrap(),
            serde_json::json!({"decision": "deny", "rule": null, "reason": "no"})
        );
    }

    // --- parse errors -----------------------------------------------------------------

    #[test]
    fn toml_syntax_errors_name_their_line() {
        let (line, message) = only_problem("approval_timeout = \"4h\"\n\n[[rule]\nname = \"x\"\n");
        assert_eq!(line, 3, "{message}");
    }

    #[test]
    fn unknown_keys_name_their_line() {
        let (line, message) = only_problem("[[rule]]\nname = \"x\"\nalow = [\"*\"]\n");
        assert_eq!(line, 3);
        assert!(message.contains("alow"), "{message}");
        let (line, message) = only_problem("[[rules]]\nname = \"x\"\n");
        assert_eq!(line, 1);
        assert!(message.contains("rules"), "{message}");
    }

    #[test]
    fn unknown_actions_name_their_line_and_the_known_ones() {
        let source = "[[rule]]\nname = \"x\"\nallow = [\n  \"idp.unlock\",\n  \"idp.delete\",\n]\n";
        let error = parse_err(source);
        let text = error.to_string();
        assert!(
            text.starts_with("line 5: unknown action `idp.delete`; known actions: *, idp.*,"),
            "{text}"
        );
        assert!(
            text.contains("idp.groups") && text.contains("idp.add-group-member"),
            "{text}"
        );
        assert!(!text.contains("idp.find-user"), "{text}");
    }

    #[test]
    fn read_only_actions_are_rejected_with_a_reason() {
        let (line, message) = only_problem("[[rule]]\nname = \"x\"\nallow = [\"idp.read\"]\n");
        assert_eq!(line, 3);
        assert!(message.contains("only reads"), "{message}");
    }

    const VERIFED: &str = r#"
[[rule]]
name = "self-service"
allow = ["idp.unlock"]
when = "context.requester.verifed"
"#;

    #[test]
    fn a_misspelt_context_attribute_is_rejected_at_the_when_line() {
        let error = parse_err(VERIFED);
        let p = &error.problems()[0];
        assert_eq!(p.line, 5, "{error}");
        // `when = "` is 8 characters; the expression starts at column 9.
        assert_eq!(p.column, Some(9), "{error}");
        assert!(
            p.message.contains("self-service")
                && p.message.contains("verifed")
                && p.message.contains("did you mean `verified`"),
            "{error}"
        );
        assert!(!p.message.contains("call:"), "{error}");
    }

    #[test]
    fn a_type_error_is_rejected_at_the_when_line() {
        let source = "[[rule]]\nname = \"x\"\nallow = [\"*\"]\nwhen = 'context.requester.verified == \"yes\"'\n";
        let (line, message) = only_problem(source);
        assert_eq!(line, 4);
        assert!(
            message.contains("Bool") && message.contains("String"),
            "{message}"
        );
    }

    #[test]
    fn cedar_syntax_errors_point_into_multi_line_conditions() {
        let source = "[[rule]]\nname = \"x\"\nallow = [\"*\"]\nwhen = '''\ncontext.requester.verified &&\n  context.requester.is_target &&\n'''\n";
        let error = parse_err(source);
        // Cedar places "unexpected end of input" right after the dangling `&&`.
        assert_eq!(error.problems()[0].line, 6, "{error}");
        assert_eq!(error.problems()[0].column, Some(33), "{error}");
        assert!(error.to_string().contains("rule `x`: in `when`"), "{error}");
    }

    #[test]
    fn a_condition_cannot_smuggle_in_another_policy() {
        let source = "[[rule]]\nname = \"x\"\nallow = [\"*\"]\nwhen = \"true }; permit(principal, action, resource) when { true\"\n";
        let (line, _) = only_problem(source);
        assert_eq!(line, 4);
    }

    #[test]
    fn a_comment_in_a_condition_is_harmless() {
        let source = "[[rule]]\nname = \"x\"\nallow = [\"psa.write\"]\nwhen = \"context.requester.verified // verified only\"\n";
        let mut request = owner_call(HostFunction::AddNote);
        assert_eq!(decide(source, &request).rule(), Some("x"));
        request.requester.verified = false;
        assert_eq!(decide(source, &request).rule(), None);
    }

    #[test]
    fn duplicate_rule_names_are_rejected() {
        let source =
            "[[rule]]\nname = \"x\"\nallow = [\"*\"]\n\n[[rule]]\nname = \"x\"\ndeny = [\"*\"]\n";
        let (line, message) = only_problem(source);
        assert_eq!(line, 6);
        assert!(message.contains("already used on line 2"), "{message}");
    }

    #[test]
    fn a_duplicate_name_is_reported_even_on_a_broken_rule() {
        let source = "[[rule]]\nname = \"x\"\nallow = [\"*\"]\n\n[[rule]]\nname = \"x\"\nallow = [\"idp.delete\"]\n";
        let error = parse_err(source);
        let lines: Vec<usize> = error.problems().iter().map(|p| p.line).collect();
        assert_eq!(lines, [6, 7], "{error}");
    }

    #[test]
    fn a_rule_without_a_name_is_reported_at_its_table() {
        let source = "[[rule]]\nallow = [\"*\"]\nwhen = \"context.nope\"\n";
        let error = parse_err(source);
        let lines: Vec<usize> = error.problems().iter().map(|p| p.line).collect();
        assert_eq!(lines, [1, 3], "{error}");
        assert!(
            error.to_string().contains("line 3: this rule: in `when`"),
            "{error}"
        );
    }

    #[test]
    fn rule_names_may_hold_quotes_and_backslashes() {
        let source = "[[rule]]\nname = 'notes \"always\" \\ ok'\nallow = [\"psa.write\"]\n";
        assert_eq!(
            decide(source, &owner_call(HostFunction::AddNote)).rule(),
            Some("notes \"always\" \\ ok")
        );
    }

    #[test]
    fn an_ask_needs_approvers_and_only_an_ask_has_them() {
        let (line, message) = only_problem("[[rule]]\nname = \"x\"\nask = [\"idp.groups\"]\n");
        assert_eq!(line, 2);
        assert!(message.contains("names no approvers"), "{message}");
        let (line, message) = only_problem(
            "[[rule]]\nname = \"x\"\nallow = [\"idp.groups\"]\napprovers = [\"manager\"]\n",
        );
        assert_eq!(line, 4);
        assert!(message.contains("only applies to ask rules"), "{message}");
    }

    #[test]
    fn unknown_approver_roles_are_rejected() {
        let source = "[approvers]\nfinance = [\"group:Finance\"]\n\n[[rule]]\nname = \"x\"\nask = [\"idp.licenses\"]\napprovers = [\"finanse\"]\n";
        let (line, message) = only_problem(source);
        assert_eq!(line, 7);
        assert!(
            message.contains("unknown approver `finanse`") && message.contains("finance"),
            "{message}"
        );
    }

    #[test]
    fn roles_may_not_name_roles() {
        let source =
            "[approvers]\nfinance = [\"group:Finance\"]\nboth = [\"finance\", \"cfo@acme.test\"]\n";
        let (line, message) = only_problem(source);
        assert_eq!(line, 3);
        assert!(message.contains("not other roles"), "{message}");
    }

    #[test]
    fn a_rule_makes_exactly_one_decision() {
        let (line, message) =
            only_problem("[[rule]]\nname = \"x\"\nallow = [\"*\"]\ndeny = [\"*\"]\n");
        assert_eq!(line, 4);
        assert!(message.contains("both `allow` and `deny`"), "{message}");
        let (line, message) = only_problem("[[rule]]\nname = \"x\"\nwhen = \"true\"\n");
        assert_eq!(line, 2);
        assert!(message.contains("makes no decision"), "{message}");
    }

    #[test]
    fn a_reason_belongs_to_deny_rules() {
        let (line, _) =
            only_problem("[[rule]]\nname = \"x\"\nallow = [\"*\"]\nreason = \"because\"\n");
        assert_eq!(line, 4);
    }

    #[test]
    fn every_problem_is_reported_in_line_order() {
        let source = r#"approval_timeout = "soon"

[[rule]]
name = "a"
allow = ["idp.delete"]
when = "context.requester.verifed"

[[rule]]
name = "b"
ask = ["idp.groups"]
"#;
        let error = parse_err(source);
        let lines: Vec<usize> = error.problems().iter().map(|p| p.line).collect();
        assert_eq!(lines, [1, 5, 6, 9], "{error}");
        assert_eq!(error.to_string().lines().count(), 4, "{error}");
        assert!(
            error
                .to_string()
                .starts_with("line 1: approval_timeout `soon`"),
            "{error}"
        );
    }

    #[test]
    fn approval_timeouts_accept_the_usual_forms() {
        let timeout = |t: &str| {
            Policy::parse(&format!("approval_timeout = \"{t}\"\n")).map(|p| p.approval_timeout())
        };
        assert_eq!(timeout("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(timeout("90m").unwrap(), Duration::from_secs(90 * 60));
        assert_eq!(timeout("4h").unwrap(), Duration::from_secs(4 * 3600));
        assert_eq!(timeout("1d").unwrap(), Duration::from_secs(86_400));
        assert_eq!(timeout("1h 30m").unwrap(), Duration::from_secs(5400));
        for bad in ["4", "h", "4 hours", "0m", "", "99999999999999999999d"] {
            let error = timeout(bad).unwrap_err();
            assert_eq!(error.problems()[0].line, 1, "{bad}: {error}");
        }
        assert_eq!(
            Policy::parse("").unwrap().approval_timeout(),
            DEFAULT_APPROVAL_TIMEOUT
        );
    }

    #[test]
    fn department_heads_are_found_ignoring_case() {
        let policy = Policy::parse("[department_heads]\nFinance = \"fiona@acme.test\"\n").unwrap();
        assert_eq!(policy.department_head("finance"), Some("fiona@acme.test"));
        assert_eq!(policy.department_head("FINANCE "), Some("fiona@acme.test"));
        assert_eq!(policy.department_head("Sales"), None);
        let (line, _) = only_problem("[department_heads]\nFinance = \"fiona\"\n");
        assert_eq!(line, 2);
    }

    // --- matching ---------------------------------------------------------------------

    #[test]
    fn interface_wildcards_cover_their_interface_only() {
        let source = "[[rule]]\nname = \"directory\"\nallow = [\"idp.*\"]\n";
        assert_eq!(
            decide(source, &owner_call(HostFunction::RemoveMailboxAccess)).rule(),
            Some("directory")
        );
        assert_eq!(
            decide(source, &owner_call(HostFunction::AddNote)).rule(),
            None
        );
        let policy = Policy::parse(source).unwrap();
        assert_eq!(policy.rules()[0].functions().len(), 11);
    }

    #[test]
    fn a_star_covers_every_action() {
        let source = "[[rule]]\nname = \"everything\"\nallow = [\"*\"]\n";
        for function in [
            HostFunction::ChatAsk,
            HostFunction::LinkToParent,
            HostFunction::AssignLicense,
        ] {
            assert_eq!(
                decide(source, &owner_call(function)).rule(),
                Some("everything")
            );
        }
    }

    #[test]
    fn a_function_pattern_covers_that_function_only() {
        let source = "[[rule]]\nname = \"add-only\"\nallow = [\"idp.add-group-member\"]\n";
        assert_eq!(
            decide(source, &owner_call(HostFunction::AddGroupMember)).rule(),
            Some("add-only")
        );
        assert_eq!(
            decide(source, &owner_call(HostFunction::RemoveGroupMember)).rule(),
            None
        );
    }

    #[test]
    fn conditions_can_name_the_plugin_and_the_hour() {
        let source = r#"
[[rule]]
name = "office-hours-groups"
allow = ["idp.groups"]
when = 'principal == Capdesk::Plugin::"group-access" && context.time.hour >= 8 && context.time.hour < 18 && context.time.weekday != "sunday"'
"#;
        let mut request = owner_call(HostFunction::AddGroupMember);
        request.plugin = "group-access";
        request.time = CallTime {
            hour: 9,
            weekday: Weekday::Monday,
        };
        assert_eq!(decide(source, &request).rule(), Some("office-hours-groups"));
        request.time.hour = 20;
        assert_eq!(decide(source, &request).rule(), None);
        request.time.hour = 9;
        request.plugin = "other";
        assert_eq!(decide(source, &request).rule(), None);
    }

    #[test]
    fn only_functions_whose_rules_read_the_time_need_the_clock() {
        let policy = Policy::parse(
            r#"
[[rule]]
name = "office-hours-groups"
allow = ["idp.groups"]
when = 'context.time.hour >= 8'

[[rule]]
name = "unlock"
allow = ["idp.unlock-account"]
when = 'context.requester.verified'
"#,
        )
        .unwrap();
        assert!(policy.reads_time(HostFunction::AddGroupMember));
        assert!(policy.reads_time(HostFunction::RemoveGroupMember));
        assert!(!policy.reads_time(HostFunction::UnlockAccount));
        assert!(!policy.reads_time(HostFunction::FindUser));
        assert!(!Policy::default_policy().reads_time(HostFunction::UnlockAccount));
    }

    #[test]
    fn conditions_can_test_sets_and_arguments() {
        let source = r#"
[[rule]]
name = "sales-groups"
allow = ["idp.add-group-member"]
when = 'context.target.groups.contains("Sales") && context.group like "Sales *"'
"#;
        let member_of = groups();
        let mut request = owner_call(HostFunction::AddGroupMember);
        if let Some(target) = &mut request.target {
            target.groups = &member_of;
        }
        request.group = Some("Sales Leads");
        assert_eq!(decide(source, &request).rule(), Some("sales-groups"));
        request.group = Some("Finance");
        assert_eq!(decide(source, &request).rule(), None);
    }

    #[test]
    fn deny_beats_ask_beats_allow_whatever_the_order() {
        let source = r#"
[[rule]]
name = "allow-all"
allow = ["*"]

[[rule]]
name = "ask-groups"
ask = ["idp.groups"]
approvers = ["manager"]

[[rule]]
name = "ask-adds"
ask = ["idp.add-group-member"]
approvers = ["group:Helpdesk", "manager", "boss@acme.test"]

[[rule]]
name = "no-unverified"
deny = ["idp.*"]
when = "!context.requester.verified"
"#;
        let mut request = owner_call(HostFunction::AddGroupMember);
        assert_eq!(
            decide(source, &request),
            Decision::Ask {
                rule: "ask-groups".into(),
                approvers: vec![
                    ApproverSpec::Manager,
                    ApproverSpec::Group("Helpdesk".into()),
                    ApproverSpec::Person("boss@acme.test".into()),
                ],
            }
        );
        request.requester.verified = false;
        assert_eq!(
            decide(source, &request),
            Decision::Deny {
                rule: Some("no-unverified".into()),
                reason: "rule `no-unverified` denies idp.add-group-member".into(),
            }
        );
        assert_eq!(
            decide(source, &owner_call(HostFunction::AddNote)).rule(),
            Some("allow-all")
        );
    }

    #[test]
    fn a_rule_that_cannot_match_is_a_warning_not_an_error() {
        let source = "[[rule]]\nname = \"never\"\nallow = [\"*\"]\nwhen = \"false\"\n";
        let policy = Policy::parse(source).unwrap();
        assert_eq!(policy.warnings().len(), 1, "{:?}", policy.warnings());
        assert_eq!(policy.warnings()[0].line, 4);
    }

    #[test]
    fn an_evaluation_error_denies() {
        // Validation cannot see overflow coming; Cedar then skips the rule, and so must
        // the deny it might have been.
        let source = r#"
[[rule]]
name = "all"
allow = ["*"]

[[rule]]
name = "overflow"
deny = ["*"]
when = "context.time.hour * 9223372036854775807 > 0"
"#;
        let mut request = owner_call(HostFunction::AddNote);
        request.time.hour = 2;
        let decision = decide(source, &request);
        let Decision::Deny {
            rule: Some(rule),
            reason,
        } = &decision
        else {
            panic!("{decision:?}");
        };
        assert_eq!(rule, "overflow");
        assert!(reason.contains("could not be evaluated"), "{reason}");
    }

    #[test]
    fn contexts_match_the_schema() {
        let member_of = groups();
        let mut full = owner_call(HostFunction::AddGroupMember);
        if let Some(target) = &mut full.target {
            target.groups = &member_of;
            target.licenses = &member_of;
        }
        full.group = Some("g");
        full.recipient = Some("r");
        let bare = Request::new("acme", "p", HostFunction::ChatSend, "");
        for request in [full, bare] {
            for (function, action) in &VOCABULARY.calls {
                let context = Context::from_pairs(context_pairs(&request).unwrap()).unwrap();
                let principal = EntityUid::from_type_name_and_id(
                    VOCABULARY.plugin_type.clone(),
                    EntityId::new("p"),
                );
                let resource = EntityUid::from_type_name_and_id(
                    VOCABULARY.tenant_type.clone(),
                    EntityId::new("t"),
                );
                cedar_policy::Request::new(
                    principal,
                    action.clone(),
                    resource,
                    context,
                    Some(&VOCABULARY.schema),
                )
                .unwrap_or_else(|e| panic!("{function}: {e}"));
            }
        }
    }

    #[test]
    fn call_times_are_utc_hours_and_weekdays() {
        // 2024-01-01T00:00:00Z was a Monday.
        let monday = UNIX_EPOCH + Duration::from_secs(1_704_067_200);
        assert_eq!(
            CallTime::at(monday),
            CallTime {
                hour: 0,
                weekday: Weekday::Monday
            }
        );
        let later = monday + Duration::from_secs(6 * 86_400 + 13 * 3600 + 59 * 60);
        assert_eq!(
            CallTime::at(later),
            CallTime {
                hour: 13,
                weekday: Weekday::Sunday
            }
        );
    }

    #[test]
    fn the_compiled_cedar_names_each_rule() {
        let policy = Policy::default_policy();
        let cedar = policy.cedar();
        assert!(cedar.contains("@id(\"group-membership\")"), "{cedar}");
        assert!(
            cedar.contains(
                "permit(principal, action in Capdesk::Action::\"capability:idp.groups\", resource)"
            ),
            "{cedar}"
        );
        assert!(Policy::cedar_schema().contains("action \"call:chat.send\""));
    }

    // --- slices ---------------------------------------------------------------------

    /// How `decide` worked before slices: Cedar's authorizer over every rule (with its
    /// action scope) and the whole context. Slices must decide exactly as this does.
    fn decide_whole(policy: &Policy, request: &Request<'_>) -> Decision {
        use cedar_policy::{Authorizer, Decision as CedarDecision};

        let function = request.function;
        let Some(action) = VOCABULARY.calls.get(&function) else {
            return Decision::Deny {
                rule: None,
                reason: format!(
                    "{function} only reads; the policy decides side-effecting calls, and reads \
                     are governed by the plugin's grants alone"
                ),
            };
        };
        let mut policies = PolicySet::new();
        let mut index = HashMap::new();
        for (i, rule) in policy.rules().iter().enumerate() {
            let patterns: Vec<ActionPattern> = rule
                .actions()
                .iter()
                .map(|a| ActionPattern::resolve(a).unwrap())
                .collect();
            let text = cedar_text(&rule.name, rule.decision, &patterns, rule.when()).text;
            let id = PolicyId::new(&rule.name);
            policies
                .add(cedar_policy::Policy::parse(Some(id), &text).unwrap())
                .unwrap();
            index.insert(rule.name.clone(), i);
        }
        let context = Context::from_pairs(context_pairs(request).unwrap()).unwrap();
        let principal = EntityUid::from_type_name_and_id(
            VOCABULARY.plugin_type.clone(),
            EntityId::new(request.plugin),
        );
        let resource = EntityUid::from_type_name_and_id(
            VOCABULARY.tenant_type.clone(),
            EntityId::new(request.tenant),
        );
        let cedar_request =
            cedar_policy::Request::new(principal, action.clone(), resource, context, None).unwrap();
        let response =
            Authorizer::new().is_authorized(&cedar_request, &policies, &VOCABULARY.actions);
        let diagnostics = response.diagnostics();
        let mut deciding: Vec<&Rule> = diagnostics
            .reason()
            .filter_map(|id| index.get(AsRef::<str>::as_ref(id)))
            .map(|&i| &policy.rules()[i])
            .collect();
        deciding.sort_by_key(|r| r.line);

        if response.decision() == CedarDecision::Deny
            && let Some(rule) = deciding.first()
        {
            let reason = match &rule.reason {
                Some(reason) => format!("rule `{}` denies {function}: {reason}", rule.name),
                None => format!("rule `{}` denies {function}", rule.name),
            };
            return Decision::Deny {
                rule: Some(rule.name.clone()),
                reason,
            };
        }
        if let Some(error) = diagnostics.errors().next() {
            let cedar_policy::AuthorizationError::PolicyEvaluationError(error) = error;
            let rule = error.policy_id().to_string();
            return Decision::Deny {
                reason: format!(
                    "rule `{rule}` could not be evaluated ({}), so {function} is denied; \
                     fix the rule's `when` condition",
                    error.inner()
                ),
                rule: Some(rule),
            };
        }
        if response.decision() == CedarDecision::Deny {
            return Decision::Deny {
                rule: None,
                reason: format!(
                    "no rule allows {function} here, and a call no rule allows is denied; \
                     add an allow or ask rule to the tenant's policy to permit it"
                ),
            };
        }
        let asks: Vec<&Rule> = deciding
            .iter()
            .copied()
            .filter(|r| r.decision == DecisionKind::Ask)
            .collect();
        if let Some(first) = asks.first() {
            let mut approvers: Vec<ApproverSpec> = Vec::new();
            for spec in asks.iter().flat_map(|r| &r.approvers) {
                if !approvers.contains(spec) {
                    approvers.push(spec.clone());
                }
            }
            return Decision::Ask {
                rule: first.name.clone(),
                approvers,
            };
        }
        match deciding.first() {
            Some(rule) => Decision::Allow {
                rule: rule.name.clone(),
            },
            None => panic!("Cedar allowed {function} without naming a rule"),
        }
    }

    /// Rule files that exercise what slices and partial contexts must get right.
    const SLICE_SOURCES: &[&str] = &[
        DEFAULT_SOURCE,
        // Every kind of action pattern, unconditional rules of every decision, and a
        // deny without a `when` between conditional ones.
        r#"
[[rule]]
name = "ask-groups"
ask = ["idp.groups"]
approvers = ["manager"]

[[rule]]
name = "unverified"
deny = ["idp.*"]
when = "!context.requester.verified"

[[rule]]
name = "no-license-removal"
deny = ["idp.remove-license"]

[[rule]]
name = "adds"
ask = ["idp.add-group-member", "idp.licenses"]
approvers = ["group:Helpdesk", "manager"]

[[rule]]
name = "chat"
allow = ["chat.*", "psa.write"]
when = 'context.recipient like "*@acme.test" || context.ticket.channel == "chat"'

[[rule]]
name = "all"
allow = ["*"]
when = "context.target.exists && context.target.enabled"
"#,
        // Whole records, `has`, `if`, sets, the plugin and the action in conditions.
        r#"
[[rule]]
name = "has"
deny = ["idp.unlock"]
when = "context.target has email && context.target.email == \"\""

[[rule]]
name = "records"
ask = ["idp.groups"]
approvers = ["manager"]
when = 'context.ticket == {id: "T-1", category: "password-reset", channel: "email", subject: "locked out"}'

[[rule]]
name = "if"
allow = ["idp.*"]
when = 'if context.requester.verified then context.target.department == "Sales" else context.time.hour < 0'

[[rule]]
name = "sets"
allow = ["idp.groups"]
when = 'context.target.groups.containsAny(["Sales", context.group]) && context.target.licenses.isEmpty()'

[[rule]]
name = "who"
allow = ["psa.*"]
when = 'principal == Capdesk::Plugin::"password-reset" && resource == Capdesk::Tenant::"acme" && action == Capdesk::Action::"call:psa.add-note"'
"#,
        // Rules that fail to evaluate, before and after deny and allow rules.
        r#"
[[rule]]
name = "allow-all"
allow = ["*"]

[[rule]]
name = "overflow-hour"
deny = ["idp.*"]
when = "context.time.hour * 9223372036854775807 > 1"

[[rule]]
name = "privileged"
deny = ["*"]
when = "context.target.privileged"

[[rule]]
name = 'overflow "any" \ rule'
ask = ["*"]
approvers = ["manager"]
when = "context.time.hour + 9223372036854775807 > 0"
"#,
        // Several rules on one line: ties keep file order.
        r#"rule = [{ name = "b", allow = ["*"] }, { name = "a", ask = ["*"], approvers = ["manager"], when = "context.requester.is_target" }, { name = "c", deny = ["psa.*"], when = "context.requester.verified" }]
"#,
    ];

    /// Requests that tell the rules above apart.
    fn slice_requests(member_of: &[String]) -> Vec<Request<'_>> {
        let mut requests = Vec::new();
        for function in FUNCTIONS {
            let owner = owner_call(function);
            let mut privileged = owner_call(function);
            let mut unverified = owner_call(function);
            let mut colleague = owner_call(function);
            let mut incident = owner_call(function);
            let mut grouped = owner_call(function);
            if let Some(target) = &mut privileged.target {
                target.privileged = true;
            }
            unverified.requester.verified = false;
            colleague.requester.email = "carl@acme.test";
            incident.category = "security-incident";
            if let Some(target) = &mut grouped.target {
                target.groups = member_of;
                target.email = "";
            }
            grouped.group = Some("Sales Leads");
            grouped.recipient = Some("olivia@acme.test");
            grouped.ticket.channel = "chat";
            grouped.plugin = "other";
            let bare = Request::new("acme", "password-reset", function, "x");
            let elsewhere = Request::new("globex", "password-reset", function, "network");
            let all = [
                owner, privileged, unverified, colleague, incident, grouped, bare, elsewhere,
            ];
            // Hours 0 and 1 let different overflow rules fail.
            for (hour, mut request) in [9, 2, 23, 12, 0, 1, 0, 1].into_iter().zip(all) {
                request.time = CallTime {
                    hour,
                    weekday: Weekday::ALL[usize::from(hour) % 7],
                };
                requests.push(request);
            }
        }
        requests
    }

    #[test]
    fn slices_decide_as_the_whole_policy_does() {
        let member_of = groups();
        let requests = slice_requests(&member_of);
        let mut kinds = HashMap::new();
        for source in SLICE_SOURCES {
            let policy = Policy::parse(source).unwrap_or_else(|e| panic!("{e}\n{source}"));
            for request in &requests {
                let decision = policy.decide(request);
                assert_eq!(
                    decision,
                    decide_whole(&policy, request),
                    "{request:?}\n{source}"
                );
                let errored = matches!(&decision, Decision::Deny { reason, .. }
                    if reason.contains("could not be evaluated"));
                *kinds.entry((decision.kind(), errored)).or_insert(0) += 1;
            }
        }
        // The requests reach every outcome, failures included.
        for kind in [
            (DecisionKind::Allow, false),
            (DecisionKind::Ask, false),
            (DecisionKind::Deny, false),
            (DecisionKind::Deny, true),
        ] {
            assert!(kinds.get(&kind).is_some_and(|n| *n > 3), "{kinds:?}");
        }
    }

    #[test]
    fn remembered_decisions_are_the_ones_cedar_gives() {
        let member_of = groups();
        let requests = slice_requests(&member_of);
        for source in SLICE_SOURCES {
            let policy = Policy::parse(source).unwrap_or_else(|e| panic!("{e}\n{source}"));
            for request in &requests {
                policy.decide(request);
            }
            // Every call is remembered now, each as the whole policy decides it: calls
            // that differ in a fact some rule reads never share a memo entry.
            for request in &requests {
                assert_eq!(
                    policy.remembered(request),
                    Some(decide_whole(&policy, request)),
                    "{request:?}\n{source}"
                );
            }
        }
    }

    #[test]
    fn a_call_with_a_new_fact_is_not_answered_from_memory() {
        let policy = Policy::default_policy();
        let owner = owner_call(HostFunction::UnlockAccount);
        assert!(policy.remembered(&owner).is_none());
        assert_eq!(policy.decide(&owner).kind(), DecisionKind::Allow);
        assert_eq!(
            policy.remembered(&owner).map(|d| d.kind()),
            Some(DecisionKind::Allow)
        );
        // Another owner with the same facts: the default policy reads no email.
        let mut other = owner_call(HostFunction::UnlockAccount);
        other.requester.email = "pat@acme.test";
        if let Some(target) = &mut other.target {
            target.email = "pat@acme.test";
        }
        assert_eq!(
            policy.remembered(&other).map(|d| d.kind()),
            Some(DecisionKind::Allow)
        );
        // A privileged target is a fact the policy reads: decided afresh, and denied.
        let mut privileged = owner_call(HostFunction::UnlockAccount);
        if let Some(target) = &mut privileged.target {
            target.privileged = true;
        }
        assert!(policy.remembered(&privileged).is_none());
        assert_eq!(policy.decide(&privileged).kind(), DecisionKind::Deny);
        // So is another tenant, and a copy of the policy remembers nothing.
        let mut elsewhere = owner_call(HostFunction::UnlockAccount);
        elsewhere.tenant = "globex";
        assert!(policy.remembered(&elsewhere).is_none());
        assert!(policy.clone().remembered(&owner).is_none());
    }

    #[test]
    fn a_slice_holds_only_the_rules_covering_its_function() {
        let policy = Policy::default_policy();
        let names = |function| -> Vec<&str> {
            policy.slices[&function]
                .rules
                .iter()
                .map(|&i| policy.rules()[i].name())
                .collect()
        };
        assert_eq!(
            names(HostFunction::AddGroupMember),
            [
                "privileged-accounts",
                "security-incidents",
                "group-membership"
            ]
        );
        assert_eq!(
            names(HostFunction::UnlockAccount),
            [
                "privileged-accounts",
                "security-incidents",
                "owner-self-service"
            ]
        );
        assert_eq!(
            names(HostFunction::ChatAsk),
            [
                "privileged-accounts",
                "security-incidents",
                "tickets-and-chat"
            ]
        );
        // Reads have no slice: the policy does not decide them.
        assert!(!policy.slices.contains_key(&HostFunction::FindUser));
        assert_eq!(
            policy.slices.len(),
            FUNCTIONS.iter().filter(|f| f.is_side_effecting()).count()
        );
    }

    /// The context attributes the `when` of a one-rule policy reads.
    fn reads_of(when: &str) -> ContextReads {
        let text = cedar_text("r", DecisionKind::Allow, &[], Some(when)).text;
        let policy = cedar_policy::Policy::parse(None, &text).unwrap();
        ContextReads::of_policy(&policy.to_pst().unwrap())
    }

    fn reads(paths: &[&[&str]]) -> ContextReads {
        paths.iter().fold(ContextReads::NONE, |all, p| {
            all.union(ContextReads::path(p))
        })
    }

    #[test]
    fn contexts_hold_what_the_conditions_read() {
        assert_eq!(reads_of("true"), ContextReads::NONE);
        assert_eq!(
            reads_of("context.target.privileged"),
            reads(&[&["target", "privileged"]])
        );
        assert_eq!(
            reads_of(r#"context.group like "Sales *" && !context.requester.verified"#),
            reads(&[&["group"], &["requester", "verified"]])
        );
        assert_eq!(
            reads_of(r#"context.target.groups.contains("VIP") || context.time.hour < 8"#),
            reads(&[&["target", "groups"], &["time", "hour"]])
        );
        assert_eq!(
            reads_of(r#"principal == Capdesk::Plugin::"p" && action == action"#),
            ContextReads::NONE
        );
        // A record used whole, asked about with `has`, or reached other than by a
        // path off `context`, is read whole.
        assert_eq!(reads_of("context.target has email"), reads(&[&["target"]]));
        assert_eq!(
            reads_of("context.ticket == context.ticket"),
            reads(&[&["ticket"]])
        );
        assert_eq!(
            reads_of(
                "(if context.requester.verified then context.target else context.target).enabled"
            ),
            reads(&[&["requester", "verified"], &["target"]])
        );
        assert_eq!(
            reads_of("[context.time, {t: context.requester}].isEmpty()"),
            reads(&[&["time"], &["requester"]])
        );
        for whole in ["context has group", "context == context", "context.nope"] {
            assert_eq!(reads_of(whole), ContextReads::ALL, "{whole}");
        }
    }

    #[test]
    fn every_context_attribute_has_its_own_leaf() {
        let mut seen = ContextReads::NONE;
        let mut leaves = 0;
        for (name, attribute) in &CONTEXT {
            let paths: Vec<Vec<&str>> = match attribute {
                Attribute::Value(_) => vec![vec![*name]],
                Attribute::Record(fields) => fields.iter().map(|(f, _)| vec![*name, *f]).collect(),
            };
            for path in paths {
                let leaf = ContextReads::path(&path);
                assert_eq!(leaf.0.count_ones(), 1, "{path:?}");
                assert_eq!(seen.0 & leaf.0, 0, "{path:?}");
                seen = seen.union(leaf);
                leaves += 1;
            }
        }
        assert_eq!(leaves, CONTEXT_LEAVES);
        assert_eq!(seen, ContextReads::ALL);
        // A partial context holds exactly the attributes read.
        let request = owner_call(HostFunction::UnlockAccount);
        let partial = reads(&[&["target", "privileged"], &["group"], &["time"]]);
        let pairs = context_pairs_reading(&request, partial).unwrap();
        let context = Context::from_pairs(pairs).unwrap();
        assert_eq!(
            context.to_string(),
            format!(
                r#"{{group: "", target: {{privileged: false}}, time: {{hour: {}, weekday: "{}"}}}}"#,
                request.time.hour, request.time.weekday
            )
        );
    }

    #[test]
    fn the_default_policy_builds_small_contexts() {
        let policy = Policy::default_policy();
        let base = reads(&[&["target", "privileged"], &["ticket", "category"]]);
        let owner = base.union(reads(&[
            &["requester", "verified"],
            &["requester", "is_target"],
        ]));
        for (function, slice) in &policy.slices {
            let expected = match function.capability() {
                Capability::IdpUnlock
                | Capability::IdpPassword
                | Capability::IdpMfa
                | Capability::IdpSessions => owner,
                _ => base,
            };
            assert_eq!(slice.reads, expected, "{function}");
        }
    }

    /// Run with `cargo test --release -- --ignored --nocapture decision_speed`.
    #[test]
    #[ignore]
    fn decision_speed() {
        let policy = Policy::default_policy();
        let member_of = groups();
        let mut request = owner_call(HostFunction::AddGroupMember);
        if let Some(target) = &mut request.target {
            target.groups = &member_of;
        }
        request.group = Some("Sales Leads");
        let n = 20_000;
        let start = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(policy.decide(std::hint::black_box(&request)));
        }
        let per = start.elapsed() / n;
        let start = std::time::Instant::now();
        for _ in 0..200 {
            std::hint::black_box(Policy::default_policy());
        }
        let parse = start.elapsed() / 200;
        println!("decide: {per:?} per call; parse default policy: {parse:?}");
    }

    /// The default policy's typical decisions, timed one by one, evaluated by Cedar and
    /// remembered. Run with
    /// `cargo test --release -p capdesk --lib policy -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn decision_speed_by_case() {
        let policy = Policy::default_policy();
        let unlock = owner_call(HostFunction::UnlockAccount);
        let member_of = groups();
        let mut group_add = owner_call(HostFunction::AddGroupMember);
        if let Some(target) = &mut group_add.target {
            target.groups = &member_of;
        }
        group_add.group = Some("Sales Leads");
        let mut privileged = owner_call(HostFunction::UnlockAccount);
        if let Some(target) = &mut privileged.target {
            target.privileged = true;
        }
        let note = owner_call(HostFunction::AddNote);
        let n: u32 = 50_000;
        let cases = [
            ("allow: owner unlock", &unlock, DecisionKind::Allow),
            ("ask: group add", &group_add, DecisionKind::Ask),
            ("deny: privileged target", &privileged, DecisionKind::Deny),
            ("allow: psa.add-note", &note, DecisionKind::Allow),
        ];
        for _ in 0..n / 20 {
            for (_, request, _) in &cases {
                std::hint::black_box(policy.decide(std::hint::black_box(request)));
            }
        }
        // The machine may be busy: the fastest of several batches, and the median.
        let time = |decide: &dyn Fn()| {
            let mut batches: Vec<Duration> = (0..25)
                .map(|_| {
                    let start = std::time::Instant::now();
                    for _ in 0..n / 25 {
                        decide();
                    }
                    start.elapsed() / (n / 25)
                })
                .collect();
            batches.sort();
            (batches[0], batches[batches.len() / 2])
        };
        for (name, request, kind) in cases {
            assert_eq!(policy.decide(request).kind(), kind, "{name}");
            let (fastest, median) = time(&|| {
                std::hint::black_box(policy.decide_here(std::hint::black_box(request)));
            });
            println!("{name}: evaluated {fastest:?} per decision (median {median:?})");
            let (fastest, median) = time(&|| {
                std::hint::black_box(policy.decide(std::hint::black_box(request)));
            });
            println!("{name}: remembered {fastest:?} per decision (median {median:?})");
        }
    }
}
