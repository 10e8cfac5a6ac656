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
    #[cfg_attr(not(any(feature = "mail", feature = "forward")), allow(unused_mut))]
    let mut values: Vec<String> = Vec::new();
    #[cfg(feature = "mail")]
    if let Some(mail) = &config.mail {
        values.extend(mail.secret_values());
    }
    #[cfg(feature = "forward")]
    if let Some(forward) = &config.forward {
        values.extend(forward.secret_values());
    }
    #[cfg(not(any(feature = "mail", feature = "forward")))]
    let _ = config;
    values.retain(|v| v.len() >= MIN_SECRET_LEN && v != PLACEHOLDER);
    Secrets::new(values)
}

#[cfg(all(test, feature = "forward"))]
mod forward_tests {
    use super::*;
    use crate::notify::forward::ForwardConfig;

    // Regression: the forwarding DSN's key must be a secret of the events, as the SMTP
    // password is: a message quoting it is stored (and forwarded) with it scrubbed.
    #[test]
    fn the_dsn_key_is_a_secret_of_the_settings() {
        let forward = ForwardConfig::new("https://dsnkey0123456789@errors.example.com/3").unwrap();
        let secrets = secrets_of_settings(&Config::default().forward(forward));
        let mut t = "key dsnkey0123456789 at errors.example.com".to_owned();
        secrets.scrub(&mut t);
        assert_eq!(t, format!("key {PLACEHOLDER} at errors.example.com"));
    }
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
