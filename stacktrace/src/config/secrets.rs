//! The settings that hold secrets, as values to scrub from events.

use crate::config::Config;
use crate::model::event::PLACEHOLDER;
use crate::pipeline::redact::credentials::MIN_SECRET_LEN;
use crate::pipeline::redact::fields::Secrets;

/// The values of the settings that hold secrets, registered at install: scrubbed from every
/// text of every event and tracked request as they are (and as texts quote them), also
/// where no pattern would find them. Each setting that holds a secret adds its values here,
/// a forwarding DSN as the SMTP URL does. Values shorter than [`MIN_SECRET_LEN`] are left
/// to the patterns.
pub(crate) fn secrets_of_settings(config: &Config) -> Secrets {
    #[cfg_attr(not(feature = "mail"), allow(unused_mut))]
    let mut values: Vec<String> = Vec::new();
    #[cfg(feature = "mail")]
    if let Some(mail) = &config.mail {
        values.extend(mail.secret_values());
    }
    #[cfg(not(feature = "mail"))]
    let _ = config;
    values.retain(|v| v.len() >= MIN_SECRET_LEN && v != PLACEHOLDER);
    Secrets::new(values)
}

#[cfg(all(test, feature = "mail"))]
mod tests {
    use super::*;
    use crate::notify::mail::MailConfig;

    // Regression: the SMTP password of the mail settings was not a secret of the events: a
    // message quoting it, bare, was stored and mailed as it was.
    #[test]
    fn the_smtp_passwords_are_secrets_of_the_settings() {
        let config = Config::default().mail(
            MailConfig::default()
                .smtp_credentials("mailer", "cred-pw-1")
                .smtp_url("smtp://relay:url%40pw-2@mx.example.com:587"),
        );
        let secrets = secrets_of_settings(&config);
        let mut t = "login cred-pw-1 / url@pw-2 / url%40pw-2 / mx.example.com".to_owned();
        secrets.scrub(&mut t);
        assert_eq!(
            t,
            format!("login {PLACEHOLDER} / {PLACEHOLDER} / {PLACEHOLDER} / mx.example.com")
        );
        // Too short to be told apart from ordinary text: left to the patterns.
        let short = Config::default().mail(MailConfig::default().smtp_credentials("mailer", "pw"));
        assert!(secrets_of_settings(&short).is_empty());
        assert!(secrets_of_settings(&Config::default()).is_empty());
    }
}
