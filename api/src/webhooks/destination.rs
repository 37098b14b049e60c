//! Where webhooks may go: `http(s)` URLs on public addresses. A destination on a loopback,
//! private, link-local or otherwise non-public address would let anyone with a key make the
//! server call into its own network (SSRF), so it is refused unless the operator allows private
//! addresses. Checked at submit for what the URL itself says (an address, `localhost`), and at
//! delivery on every address the name resolves to, by the resolver the HTTP client connects
//! through: the addresses checked are the ones connected to, so a name that resolves elsewhere
//! the second time (DNS rebinding) gains nothing.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

use reqwest::{
    Url,
    dns::{Addrs, Name, Resolve, Resolving},
};

/// Why an address is not public, if it is not.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    Some(if ip.is_loopback() {
        "a loopback address"
    } else if ip.is_private() {
        "a private address"
    } else if ip.is_link_local() {
        "a link-local address (cloud metadata lives there)"
    } else if ip.is_unspecified() || a == 0 {
        "not a destination (0.0.0.0/8)"
    } else if ip.is_broadcast() || ip.is_multicast() {
        "a broadcast or multicast address"
    } else if a == 100 && (64..128).contains(&b) {
        "a carrier-grade NAT address (100.64.0.0/10)"
    } else if ip.is_documentation() || (a == 198 && (b == 18 || b == 19)) || a >= 240 {
        "a reserved address"
    } else if a == 192 && b == 0 && ip.octets()[2] == 0 {
        "an IETF protocol address (192.0.0.0/24)"
    } else {
        return None;
    })
}

/// IPv6 is checked by what is public rather than by what is not: only global unicast
/// (`2000::/3`) passes, minus its reserved blocks, and the forms that carry an IPv4 address
/// (mapped, NAT64, 6to4) are judged by that address. Anything else (`::7f00:1`, `fec0::`,
/// `100::`, Teredo) is refused, so a form nobody listed cannot reach inside.
fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if let Some(v4) = ip.to_ipv4_mapped() {
        return non_public_v4(v4);
    }
    // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return non_public_v4(embedded(segments[6], segments[7]));
    }
    // 6to4 (2002::/16) reaches the IPv4 address in its bits 16..48.
    if segments[0] == 0x2002 {
        return non_public_v4(embedded(segments[1], segments[2]));
    }
    Some(if ip.is_loopback() {
        "a loopback address"
    } else if ip.is_unspecified() {
        "not a destination (::)"
    } else if ip.is_unique_local() {
        "a private address (fc00::/7)"
    } else if ip.is_unicast_link_local() || segments[0] & 0xffc0 == 0xfec0 {
        "a link-local or site-local address"
    } else if ip.is_multicast() {
        "a multicast address"
    } else if segments[0] & 0xe000 != 0x2000 {
        "not a global unicast address (outside 2000::/3)"
    } else if segments[0] == 0x2001 && segments[1] < 0x200 {
        "an IETF protocol address (2001::/23, Teredo included)"
    } else if (segments[0] == 0x2001 && segments[1] == 0xdb8)
        || (segments[0] == 0x3fff && segments[1] < 0x1000)
    {
        "a documentation address (2001:db8::/32, 3fff::/20)"
    } else {
        return None;
    })
}

/// Checks what a callback URL says by itself: `http(s)`, a host, no credentials, and (unless
/// `allow_private`) no non-public address or `localhost` name. The message says what is wrong.
pub fn check_url(text: &str, allow_private: bool) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "must be an http or https URL, got scheme `{}`",
            url.scheme()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "must not carry credentials: a receiver authenticates webhooks by their signature (X-Minimoto-Signature)"
                .into(),
        );
    }
    let Some(host) = url.host_str() else {
        return Err("must name a host".into());
    };
    if allow_private {
        return Ok(url);
    }
    // The parser has normalised the host: an address in any spelling (`0x7f000001`) is written
    // out, an IPv6 one in brackets.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let refused = match bare.parse::<IpAddr>() {
        Ok(ip) => non_public(ip),
        Err(_) => {
            let name = bare.trim_end_matches('.').to_ascii_lowercase();
            (name == "localhost" || name.ends_with(".localhost")).then_some("a loopback name")
        }
    };
    match refused {
        Some(why) => Err(format!(
            "{host} is {why}: this server sends webhooks to public addresses only (its operator can allow private ones with --webhook-allow-private)"
        )),
        None => Ok(url),
    }
}

/// A destination refused after resolution: the error the HTTP client's connect fails with.
#[derive(Debug, thiserror::Error)]
#[error("{name} resolves to {ip}, which is {why}: webhooks go to public addresses only")]
pub struct Refused {
    name: String,
    ip: IpAddr,
    why: &'static str,
}

/// The resolver webhooks connect through: the system's lookup, then the address policy on every
/// address (one non-public address refuses the name: a round-robin name must not reach inside
/// on some attempts).
#[derive(Debug, Clone, Copy)]
pub struct PublicOnly {
    pub allow_private: bool,
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow_private
                && let Some((ip, why)) = addrs
                    .iter()
                    .find_map(|a| non_public(a.ip()).map(|why| (a.ip(), why)))
            {
                return Err(Box::new(Refused {
                    name: host,
                    ip,
                    why,
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Whether `error` (from the HTTP client) is a refusal by [`PublicOnly`], and its message.
pub fn refusal_in(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(refused) = e.downcast_ref::<Refused>() {
            return Some(refused.to_string());
        }
        cause = e.source();
    }
    None
}

/// The resolver, shared.
pub fn resolver(allow_private: bool) -> Arc<PublicOnly> {
    Arc::new(PublicOnly { allow_private })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_public_addresses_are_named_and_public_ones_pass() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.0.8",
            "198.18.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2001:db8::1",
            // IPv6 forms that carry an inside IPv4 address, or are not global unicast.
            "::7f00:1",
            "::a9fe:a9fe",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "64:ff9b:1::a00:1",
            "fec0::1",
            "100::1",
            "3fff::1",
            "4000::1",
        ] {
            let parsed: IpAddr = ip.parse().expect("ip");
            assert!(non_public(parsed).is_some(), "{ip} passed");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "64:ff9b::808:808",
            "100.128.0.1",
            "2002:808:808::1",
            "2a00:1450:4001:80b::200e",
        ] {
            let parsed: IpAddr = ip.parse().expect("ip");
            assert_eq!(non_public(parsed), None, "{ip}");
        }
    }

    #[test]
    fn a_callback_url_is_checked_for_form_and_destination() {
        assert!(check_url("https://hooks.example.com/minimoto?x=1", false).is_ok());
        for (url, says) in [
            ("not a url", "is not a URL"),
            ("ftp://example.com/x", "scheme `ftp`"),
            ("https://user:pw@example.com/", "credentials"),
            (
                "http://127.0.0.1:9000/hook",
                "127.0.0.1 is a loopback address",
            ),
            ("http://[::1]/hook", "loopback"),
            ("http://169.254.169.254/latest/meta-data", "link-local"),
            ("http://localhost:8080/", "a loopback name"),
            ("http://api.localhost./", "a loopback name"),
            ("http://0x7f000001/", "loopback"),
        ] {
            let e = check_url(url, false).expect_err(url);
            assert!(e.contains(says), "{url}: {e}");
        }
        assert!(check_url("http://127.0.0.1:9000/hook", true).is_ok());
        assert!(
            check_url("ftp://127.0.0.1/", true).is_err(),
            "the form still holds"
        );
    }

    #[tokio::test]
    async fn the_resolver_refuses_a_name_that_resolves_inside() {
        let refused = PublicOnly {
            allow_private: false,
        }
        .resolve("localhost".parse().expect("name"))
        .await
        .err()
        .expect("localhost is refused");
        let message = refusal_in(refused.as_ref()).expect("a refusal");
        assert!(message.contains("localhost resolves to"), "{message}");
        let allowed = PublicOnly {
            allow_private: true,
        }
        .resolve("localhost".parse().expect("name"))
        .await
        .map_err(|e| e.to_string())
        .expect("allowed");
        assert!(allowed.count() > 0);
    }
}
