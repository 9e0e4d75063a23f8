//! The protobuf codec of the generated services and clients: tonic-prost's,
//! with small starting buffers.
//!
//! tonic gives every stream an 8 KiB encode buffer and an 8 KiB decode
//! buffer up front. A client's stream lives as long as its connection and
//! mostly idles (a push now and then, an ack), so with ten thousand
//! connections those buffers were a quarter of the node's memory per
//! connection. Nacos messages are mostly well under 1 KiB; a larger one
//! grows the buffer as it needs.

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// Starting size of a stream's encode and decode buffers, bytes.
const BUFFER_BYTES: usize = 1024;

/// Encoded bytes a stream gathers before handing them to HTTP/2 (tonic's default).
const YIELD_THRESHOLD: usize = 32 * 1024;

/// [`ProstCodec`] with [`BUFFER_BYTES`] starting buffers; named by the
/// generated code (`host/build.rs`).
pub struct SmallCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for SmallCodec<T, U> {
    fn default() -> Self {
        SmallCodec(PhantomData)
    }
}

fn settings() -> BufferSettings {
    BufferSettings::new(BUFFER_BYTES, YIELD_THRESHOLD)
}

impl<T, U> Codec for SmallCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(settings())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(settings())
    }
}
