//! WebSocket upgrade requests (`Upgrade: websocket`, and `CONNECT`), handled outside
//! actix-http's dispatcher so that a learner socket keeps only its own small buffers
//! (`api::socket`).
//!
//! actix-http hands such a request to this service together with the raw stream (any bytes
//! after the request head are left in it, whatever `Content-Length` says). The request
//! still goes through the whole actix-web application (routing, authentication, middleware,
//! problem+json errors): the learner socket handler answers `101 Switching Protocols` with
//! the accepted socket (`ws::Accepted`) in the response's extensions. This service writes the
//! response head and, for an accepted socket, serves the WebSocket on the raw stream; any
//! other response is written whole and the connection is closed.

use std::rc::Rc;

use actix_codec::Framed;
use actix_http::body::{BodySize, MessageBody};
use actix_http::{ConnectionType, Request, h1};
use actix_service::{Service, ServiceFactory};
use actix_web::HttpResponse;
use actix_web::dev::{AppConfig, ServiceResponse};
use futures_util::SinkExt;
use tokio::net::TcpStream;

use super::socket::Socket;
use super::ws::{Accepted, MAX_MESSAGE_BYTES};

/// An HTTP worker's two services, requests and upgrades, over one instance of the
/// application built by `make` (whichever service starts first builds it).
#[allow(clippy::type_complexity)]
pub fn services<F, A, B>(
    make: F,
) -> (
    impl ServiceFactory<
        Request,
        Config = (),
        Response = ServiceResponse<B>,
        Error = actix_web::Error,
        InitError = (),
    >,
    impl ServiceFactory<
        (Request, Framed<TcpStream, h1::Codec>),
        Config = (),
        Response = (),
        Error = actix_web::Error,
        InitError = (),
    >,
)
where
    F: Fn() -> A + 'static,
    A: ServiceFactory<
            Request,
            Config = AppConfig,
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    A::Service: 'static,
    B: MessageBody + 'static,
{
    let make = Rc::new(make);
    let built: Rc<tokio::sync::OnceCell<Rc<A::Service>>> = Rc::default();
    let app = move || {
        let (make, built) = (make.clone(), built.clone());
        async move {
            built
                .get_or_try_init(|| async move {
                    make().new_service(AppConfig::default()).await.map(Rc::new)
                })
                .await
                .cloned()
        }
    };
    let requests = actix_service::fn_factory(app.clone());
    let upgrades = actix_service::fn_factory(move || {
        let app = app();
        async move {
            let app = app.await?;
            Ok(actix_service::fn_service(
                move |(req, framed): (Request, Framed<TcpStream, h1::Codec>)| {
                    serve(app.clone(), req, framed)
                },
            ))
        }
    });
    (requests, upgrades)
}

async fn serve<S, B>(
    app: Rc<S>,
    req: Request,
    mut framed: Framed<TcpStream, h1::Codec>,
) -> Result<(), actix_web::Error>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    // Boxed: the application's future is large and lives only during the handshake, while
    // this future lives as long as the socket.
    let mut res: HttpResponse = match Box::pin(app.call(req)).await {
        Ok(r) => r.into_parts().1.map_into_boxed_body(),
        Err(e) => e.error_response(),
    };
    let accepted = res.extensions_mut().remove::<Accepted>();
    let (res, body) = res.into_parts();
    let mut head: actix_http::Response<()> = res.into();
    let body = Box::pin(actix_web::body::to_bytes(body))
        .await
        .map_err(|e| actix_web::error::ErrorInternalServerError(e.to_string()))?;
    let size = if accepted.is_some() {
        BodySize::None
    } else {
        // Anything but an accepted socket ends the connection: its stream is not read on.
        head.head_mut().set_connection_type(ConnectionType::Close);
        BodySize::Sized(body.len() as u64)
    };
    Box::pin(framed.send(h1::Message::Item((head, size)))).await?;
    if !body.is_empty() {
        Box::pin(framed.send(h1::Message::Chunk(Some(body)))).await?;
    }
    let Some(accepted) = accepted else {
        return Ok(());
    };
    let parts = framed.into_parts();
    let socket = Socket::new(parts.io, &parts.read_buf, MAX_MESSAGE_BYTES);
    drop(parts.read_buf);
    drop(parts.write_buf);
    accepted.serve(socket).await;
    Ok(())
}
