# syncd configuration. No secret appears here: credentials are read from the
# files and environment variables named below.

# healthz, readyz and metrics: read-only, without authentication.
listen = "127.0.0.1:8080"

# The API, on a listener of its own, every request with the token of
# token_file (Authorization: Bearer <token>): the syncs' status, trigger,
# plan, conflicts and resolve under /v1/secretsync/syncs (the syncd status,
# trigger, conflicts and resolve subcommands call them), and, with the
# registry block below, Vault's /v1/sys/sync API (destinations,
# associations). Requests whose Host is not a loopback name (or one of
# hosts) or whose Origin is another site's are refused. Without an api
# block, syncd serves no API.
api {
  listen     = "127.0.0.1:8201"
  token_file = "/run/secrets/syncd-api-token"
  # Beyond loopback, serve TLS (or set allow_plaintext_non_loopback = true):
  #   listen   = "10.0.0.5:8201"
  #   tls_cert = "/etc/syncd/api.pem"
  #   tls_key  = "/etc/syncd/api-key.pem"
  #   hosts    = ["sync.example.internal"]
}

# /readyz stays ready while a sync's rounds have been failing for less than
# this (default 0: not ready from the first failed round).
ready_grace = "5m"

# Audit events as JSON lines in a file of mode 0600 instead of the log.
# SIGHUP opens it again at this path: rotate it with mv, then SIGHUP.
audit {
  file = "/var/log/syncd/audit.jsonl"
}

# Where baselines and status live. Replicas of syncd share them (and take a
# lock per sync) when they are kept in Vault:
state {
  connection = "vault-main"
  mount      = "secret"
  path       = "syncd"
  lock_ttl   = "15s"
}
# One daemon alone can use a file instead, its fingerprint key sealed with a
# Vault Transit key (optional; the key file then holds only ciphertext):
#   state {
#     file = "/var/lib/syncd/state.json"
#     transit {
#       connection = "vault-main"
#       mount      = "transit"
#       key        = "syncd-state"
#     }
#   }

connection "vault-main" {
  address = "https://vault.example.internal:8200"
  ca_cert = "/etc/syncd/vault-ca.pem"
  approle {
    role_id        = "6f2c7e2a-0c0e-4d7a-9c36-0d1f3c4b5a69"
    secret_id_file = "/run/secrets/syncd-secret-id" # read again at each login
  }
}

connection "vault-dr" {
  address = "https://vault-dr.example.internal:8200"
  token {
    env = "VAULT_DR_TOKEN"
  }
}

# The web app's .env file into Vault, under prod/.
sync "web-prod" {
  description      = "web app secrets from its dotenv file to Vault"
  mode             = "push"
  initial_sync     = "import-prefer-destination"
  key_schema       = "{{environment}}/{{secretKey}}"
  environment      = "prod"
  disable_deletion = false

  auto_sync {
    interval = "1m"
    debounce = "200ms"
  }

  source {
    dotenv {
      path = "/srv/web/.env"
    }
  }
  destination {
    vault {
      connection = "vault-main"
      mount      = "secret"
      path       = "apps/web"
      layout     = "secret-key"
    }
  }
}

# Vault to Vault: keep the DR cluster's copy of the shared secrets in step.
sync "shared-dr" {
  mode = "push"
  source {
    vault {
      connection = "vault-main"
      mount      = "secret"
      path       = "shared"
      layout     = "secret-path"
    }
  }
  destination {
    vault {
      connection    = "vault-dr"
      mount         = "secret"
      path          = "shared"
      layout        = "secret-path"
      poll_interval = "10s"
    }
  }
  auto_sync {
    enabled = true
  }
}

# A registry of destinations and associations, served as Vault's
# /v1/sys/sync API on the api listener (above). Destinations and associations created over the API
# live in memory (a restart forgets them); those declared here are set
# again at each start.
registry {
  connection    = "vault-main" # reads the associated secrets, writes vault-kv destinations
  poll_interval = "30s"        # Vault Community Edition has no events: changes arrive by polling

  # The registry keeps its destinations and associations in the state
  # store (its catalog); credentials in it are sealed with this Transit key.
  transit {
    key = "syncd-registry"
  }

  destination "vault-kv" "shared-copy" {
    mount  = "secret"
    path   = "copies/shared"
    layout = "secret-key"
  }

  association "vault-kv" "shared-copy" {
    mount       = "secret"
    secret_name = "shared/db"
    key_schema  = "db/{{secretKey}}"
  }

  # External destinations: the attributes are the fields of the type's
  # config (registry.GitHubRepository here, under their JSON names); a
  # credential field is best given as <field>_file or <field>_env, read
  # when syncd starts (and by -check). A credential written here as is
  # requires this file to be mode 0600 (-check says so).
  destination "gh" "api-repo" {
    access_token_file = "/run/secrets/github-token"
    repository_owner  = "acme"
    repository_name   = "api"
  }

  destination "aws-sm" "prod" {
    region               = "eu-west-1" # no access key: the AWS default credential chain
    recovery_window_days = 7
    custom_tags          = { team = "platform" }
  }

  association "gh" "api-repo" {
    mount       = "secret"
    secret_name = "shared/db"
  }
}
