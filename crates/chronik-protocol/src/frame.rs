//! Size-prefixed frames: a big-endian `i32` length, then that many bytes.

use bytes::{Buf, Bytes, BytesMut};

/// A frame that cannot be read; the connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {size} bytes exceeds the maximum of {max} bytes")]
    TooLarge { size: i64, max: usize },
    #[error("negative frame size {0}")]
    Negative(i32),
}

/// Takes one whole frame (without its length prefix) off the front of `buf`.
/// `Ok(None)` means more bytes are needed (the frame is incomplete). The declared size is
/// checked against `frame_bytes_max` before any buffer is reserved for it.
pub fn split_frame(
    buf: &mut BytesMut,
    frame_bytes_max: usize,
) -> Result<Option<Bytes>, FrameError> {
    let Some(prefix) = buf.get(..4) else {
        return Ok(None);
    };
    let mut prefix_bytes = [0u8; 4];
    prefix_bytes.copy_from_slice(prefix);
    let size = i32::from_be_bytes(prefix_bytes);
    let size = usize::try_from(size).map_err(|_| FrameError::Negative(size))?;
    if size > frame_bytes_max {
        return Err(FrameError::TooLarge {
            size: size as i64,
            max: frame_bytes_max,
        });
    }
    if buf.len() < 4 + size {
        buf.reserve(4 + size - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(size).freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn incomplete_then_whole() {
        let mut b = BytesMut::from(&[0u8, 0, 0, 3, 1, 2][..]);
        assert_eq!(split_frame(&mut b, 10), Ok(None));
        b.extend_from_slice(&[3, 0]);
        assert_eq!(
            split_frame(&mut b, 10),
            Ok(Some(Bytes::from_static(&[1, 2, 3])))
        );
        assert_eq!(&b[..], &[0]);
    }

    #[test]
    fn oversized_and_negative_are_errors() {
        let mut b = BytesMut::from(&[0x7f, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            split_frame(&mut b, 100),
            Err(FrameError::TooLarge { .. })
        ));
        let mut b = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        assert_eq!(split_frame(&mut b, 100), Err(FrameError::Negative(-1)));
    }

    proptest! {
        #[test]
        fn frames_round_trip(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
            let mut b = BytesMut::new();
            for p in &payloads {
                b.extend_from_slice(&(p.len() as i32).to_be_bytes());
                b.extend_from_slice(p);
            }
            for p in &payloads {
                let f = split_frame(&mut b, 1024).unwrap().unwrap();
                prop_assert_eq!(&f[..], &p[..]);
            }
            prop_assert_eq!(split_frame(&mut b, 1024).unwrap(), None);
        }
    }
}
