//! What the kernel's netmap says of a port without registering it
//! (`NIOCCTRL` with `NETMAP_REQ_PORT_INFO_GET`): its ring and slot counts.
//!
//! Registering a hardware port puts its NIC in netmap mode, which resets
//! it; asking for the port's description does not (netmap only looks the
//! adapter up). So the balancer learns how many NIC ring pairs an
//! interface has, and thus how many workers it needs, before anything on
//! the host changes, from the same source the registration will use: on
//! Linux and FreeBSD alike (FreeBSD has no sysfs queue directory; iflib
//! drivers size their queues per CPU unless told otherwise).

use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;

use netmap_sys::{
    nmreq_header, nmreq_port_info_get, NETMAP_DEVICE_NAME, NETMAP_REQ_PORT_INFO_GET, NIOCCTRL,
};

use super::kernel::{request_header, KernelPortError};

/// The port-info request for `name`: the header (its `nr_body` left 0,
/// the caller points it at the body it keeps) and a zeroed body, which
/// asks for the port's own counts (`nr_mem_id` 0: its own allocator).
pub fn port_info_request(
    name: &str,
) -> Result<(nmreq_header, nmreq_port_info_get), KernelPortError> {
    let header = request_header(name, NETMAP_REQ_PORT_INFO_GET)?;
    Ok((header, nmreq_port_info_get::default()))
}

/// `name`'s rings and slots as netmap reports them (`nr_rx_rings` is the
/// number of NIC receive rings, one per receive queue), through a
/// descriptor of `/dev/netmap` bound to nothing and closed on return.
pub fn port_info(name: &str) -> Result<nmreq_port_info_get, KernelPortError> {
    let (mut header, mut body) = port_info_request(name)?;
    let device = OpenOptions::new()
        .read(true)
        .write(true)
        .open(NETMAP_DEVICE_NAME.to_string_lossy().as_ref())
        .map_err(KernelPortError::Device)?;
    header.nr_body = std::ptr::addr_of_mut!(body) as u64;
    // SAFETY: NIOCCTRL takes a `nmreq_header` whose nr_body points at the
    // request's body (here a `nmreq_port_info_get`, the size the kernel
    // expects for this request type) and nr_options is 0; both outlive the
    // call, and the kernel writes only into the body's out fields.
    let rc = unsafe { libc::ioctl(device.as_raw_fd(), NIOCCTRL, &raw mut header) };
    if rc != 0 {
        return Err(KernelPortError::PortInfo {
            name: name.to_owned(),
            error: io::Error::last_os_error(),
        });
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_info_request_names_the_port_and_asks_for_its_own_counts() {
        let (header, body) = port_info_request("igb0").unwrap();
        assert_eq!(header.nr_version, 14);
        assert_eq!(header.nr_reqtype, NETMAP_REQ_PORT_INFO_GET);
        assert_ne!(header.nr_reqtype, netmap_sys::NETMAP_REQ_REGISTER);
        let name: Vec<u8> = header.nr_name[..5]
            .iter()
            .map(|c| c.to_ne_bytes()[0])
            .collect();
        assert_eq!(name, b"igb0\0");
        assert_eq!((header.nr_body, header.nr_options), (0, 0));
        assert_eq!(body, nmreq_port_info_get::default());
        assert!(port_info_request("a\0b").is_err());
        assert!(port_info_request("").is_err());
    }

    #[test]
    fn without_netmap_asking_for_a_port_s_rings_says_what_to_load() {
        if std::path::Path::new("/dev/netmap").exists() {
            return;
        }
        let message = port_info("lo").unwrap_err().to_string();
        assert!(message.contains("/dev/netmap does not exist"), "{message}");
    }

    #[test]
    fn a_refused_port_info_names_the_port_and_the_request() {
        let message = KernelPortError::PortInfo {
            name: "ix0".into(),
            error: io::Error::from_raw_os_error(libc::ENXIO),
        }
        .to_string();
        assert!(message.contains("netmap port info of ix0"), "{message}");
        assert!(message.contains("NETMAP_REQ_PORT_INFO_GET"), "{message}");
    }
}
