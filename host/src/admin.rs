//! Administrative changes to what plugins may do, shared by the command line and the HTTP
//! API so that both check the same things: a grant names an existing tenant and an
//! installed plugin, and only capabilities the plugin's manifest asks for; a tenant's
//! grant matrix shows, plugin by plugin, what is asked for, granted and not granted.

use serde::Serialize;

use crate::capability::Capability;
use crate::engine::Desk;
use crate::runtime::Manifest;

/// One plugin's line of a tenant's grant matrix.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GrantRow {
    pub plugin: String,
    pub category: String,
    /// Everything the plugin's manifest asks for.
    #[schema(value_type = Vec<String>)]
    pub requested: Vec<Capability>,
    #[schema(value_type = Vec<String>)]
    pub granted: Vec<Capability>,
    #[schema(value_type = Vec<String>)]
    pub requested_not_granted: Vec<Capability>,
}

impl Desk {
    /// Grant `caps` (every requested capability when `None`) to `plugin` for `tenant`;
    /// returns what the plugin holds afterwards.
    pub async fn grant(
        &self,
        tenant: &str,
        plugin: &str,
        caps: Option<&[Capability]>,
    ) -> anyhow::Result<Vec<Capability>> {
        self.store.tenant(tenant).await?;
        let record = self.store.plugin(plugin).await?;
        let manifest = Manifest::of(&record)?;
        let caps = caps.unwrap_or(&manifest.capabilities);
        let unrequested: Vec<&str> = caps
            .iter()
            .filter(|c| !manifest.capabilities.contains(c))
            .map(|c| c.name())
            .collect();
        if !unrequested.is_empty() {
            anyhow::bail!(
                "plugin {plugin} does not ask for {}; it asks for: {}",
                unrequested.join(", "),
                names(&manifest.capabilities)
            );
        }
        self.store.grant(tenant, plugin, caps).await?;
        Ok(self
            .store
            .granted(tenant, plugin)
            .await?
            .into_iter()
            .collect())
    }

    /// Take `caps` back from `plugin` for `tenant`; returns what it still holds.
    pub async fn revoke(
        &self,
        tenant: &str,
        plugin: &str,
        caps: &[Capability],
    ) -> anyhow::Result<Vec<Capability>> {
        self.store.tenant(tenant).await?;
        self.store.plugin(plugin).await?;
        self.store.revoke(tenant, plugin, caps).await?;
        Ok(self
            .store
            .granted(tenant, plugin)
            .await?
            .into_iter()
            .collect())
    }

    /// Every installed plugin with what it asks for and what `tenant` granted it.
    pub async fn grant_matrix(&self, tenant: &str) -> anyhow::Result<Vec<GrantRow>> {
        self.store.tenant(tenant).await?;
        let mut rows = Vec::new();
        for p in self.store.plugins().await? {
            let manifest = Manifest::of(&p)?;
            let granted: Vec<Capability> = self
                .store
                .granted(tenant, &p.id)
                .await?
                .into_iter()
                .collect();
            let requested_not_granted = manifest
                .capabilities
                .iter()
                .filter(|c| !granted.contains(c))
                .copied()
                .collect();
            rows.push(GrantRow {
                plugin: p.id,
                category: p.category,
                requested: manifest.capabilities,
                granted,
                requested_not_granted,
            });
        }
        Ok(rows)
    }
}

/// Capability names joined for a message, or `nothing`.
pub fn names(caps: &[Capability]) -> String {
    if caps.is_empty() {
        return "nothing".into();
    }
    caps.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
}

/// A tenant's policy as shown: its own or the default, the rules in order, the
/// approval timeout and the source.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PolicyView {
    pub tenant: String,
    /// The tenant has no policy of its own: the default applies.
    pub default: bool,
    pub rules: Vec<String>,
    pub approval_timeout_secs: u64,
    pub source: String,
}

impl Desk {
    /// Set the autonomy of one category (`*`: every category without its own mode).
    pub async fn set_mode(
        &self,
        tenant: &str,
        category: &str,
        mode: crate::mode::Mode,
    ) -> anyhow::Result<()> {
        let category = category.trim();
        if category != "*" {
            crate::store::validate_id("category", category)?;
        }
        self.store.set_mode(tenant, category, mode).await
    }

    /// The policy that applies to `tenant`, for showing.
    pub async fn policy_view(&self, tenant: &str) -> anyhow::Result<PolicyView> {
        self.store.tenant(tenant).await?;
        let own = self.store.policy_source(tenant).await?;
        let policy = self.policy(tenant).await?;
        Ok(PolicyView {
            tenant: tenant.to_string(),
            default: own.is_none(),
            rules: policy
                .rules()
                .iter()
                .map(|r| r.name().to_string())
                .collect(),
            approval_timeout_secs: policy.approval_timeout().as_secs(),
            source: policy.source().to_string(),
        })
    }
}
