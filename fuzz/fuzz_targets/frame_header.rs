//! `FrameHeader::parse` on arbitrary bytes: never panics, consumes what it
//! says, and re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rfc6455::frame::FrameHeader;

fuzz_target!(|data: &[u8]| {
    match FrameHeader::parse(data) {
        Ok(Some((header, len))) => {
            assert!(len <= data.len() && len == header.encoded_len());
            let mut encoded = Vec::new();
            header.encode_into(&mut encoded);
            assert_eq!(encoded, data[..len], "parse then encode changed the header");
            // Every proper prefix needs more bytes.
            for end in 0..len {
                assert_eq!(FrameHeader::parse(&data[..end]), Ok(None));
            }
        }
        Ok(None) => assert!(data.len() < 14, "a complete header was not recognised"),
        Err(error) => {
            // The error is about the bytes, so any longer input fails the same way.
            let mut longer = data.to_vec();
            longer.extend_from_slice(&[0; 14]);
            assert_eq!(FrameHeader::parse(&longer), Err(error));
        }
    }
});
