//! Several processes of one bot account sharing its chats, coordinated through Redis.
//!
//! Every session of a bot account receives every event, so two processes of one bot answer
//! everything twice. With [`RedisCoordination`] given to
//! [`DispatcherBuilder::replicas`](crate::dispatch::DispatcherBuilder::replicas), each chat is
//! handled by exactly one live replica at a time; when a replica dies or shuts down, the
//! others take its chats over and handle what it left unfinished. ARCHITECTURE.md
//! ("Replicas") has the design and its failure cases; docs/deployment.md how to run it.
