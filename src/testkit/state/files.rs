//! Files: the two-step upload (`uploadFile` announces, the HTTP upload delivers a temporal
//! file), turning a temporal file into a permanent one with `sendFile`, file info, upload
//! progress and its subscribers, and the upload limits.
//!
//! Files outlive the messages that carry them and are served over HTTP by id and token, so
//! their readiness lives here and messages only mirror it.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Value, json};

use super::State;
use super::model::{FileRecord, Preview, TemporalFile, UploadTask};
use super::payload::{Request, str_field, text_content};
use crate::testkit::config::UploadLimits;
use crate::testkit::pattern::Blob;
use crate::testkit::wire::{
    ApiResult, E_NO_FILE, E_UPLOAD_FAILED, FILE_READY, FILE_UPLOADING, MSG_FILE, MSG_TEXT, hex40,
    uuid,
};

impl State {
    /// Stores a finished user upload as a permanent file (ready or still uploading).
    pub(crate) fn store_file(&mut self, name: &str, mime: &str, data: Blob, ready: bool) -> String {
        let id = hex40();
        let size = data.len();
        self.files.insert(
            id.clone(),
            FileRecord {
                name: name.to_owned(),
                mime: mime.to_owned(),
                data,
                ready: if ready { FILE_READY } else { FILE_UPLOADING },
                received: if ready { size } else { 0 },
                token: hex40(),
                preview: None,
                subscribers: HashSet::new(),
            },
        );
        id
    }

    /// Posts a message carrying file `file_id`.
    pub(crate) fn post_file(
        &mut self,
        actor: &str,
        chat: &str,
        file_id: &str,
        reply_to: Option<&str>,
        except: Option<u64>,
    ) -> ApiResult<(String, u64)> {
        let file = self.files.get(file_id).ok_or(E_NO_FILE)?;
        let content = json!({
            "name": file.name, "size": file.data.len(), "fileId": file_id,
            "mimeType": file.mime, "readyState": file.ready,
        });
        self.post(actor, chat, MSG_FILE, content, reply_to, except)
    }

    /// Upload progress of `file_id` (READY when `ready`): subscribers get
    /// `uploadFileProgress`, messages carrying the file show its new state.
    pub(crate) fn file_progress(&mut self, file_id: &str, received: u64, ready: bool) {
        let Some(file) = self.files.get_mut(file_id) else {
            return;
        };
        file.received = received.min(file.data.len());
        if ready {
            file.ready = FILE_READY;
            file.received = file.data.len();
        }
        let payload: Arc<str> = json!({ "fileId": file_id, "progress": file.received })
            .to_string()
            .into();
        let subscribers: Vec<u64> = file.subscribers.iter().copied().collect();
        for conn in subscribers {
            let event = self.next_event(
                Cow::Borrowed("\"uploadFileProgress\""),
                payload.clone(),
                false,
            );
            self.push_to(conn, event);
        }
        // Messages carrying the file show its new state.
        let state = self.files.get(file_id).map(|file| file.ready).unwrap_or(0);
        for message in self.messages.values_mut() {
            if message.kind == MSG_FILE && message.content["fileId"] == file_id {
                message.content["readyState"] = json!(state);
            }
        }
    }

    /// New upload limits, pushed to every bot as a `getFileUploadLimits` event.
    pub(crate) fn set_limits(&mut self, limits: UploadLimits) {
        self.limits = limits;
        let payload: Arc<str> = self.limits.to_json().to_string().into();
        let bots: Vec<String> = self
            .users
            .iter()
            .filter(|(_, user)| user.bot)
            .map(|(login, _)| login.clone())
            .collect();
        for bot in bots {
            self.deliver(&bot, None, "getFileUploadLimits", &payload, false);
        }
    }

    /// HTTP upload for a task created by `uploadFile`.
    pub(crate) fn upload(
        &mut self,
        task_id: &str,
        mime: String,
        data: Blob,
        preview: Option<Preview>,
    ) -> Result<String, &'static str> {
        let task = self
            .upload_tasks
            .get(task_id)
            .ok_or("unknown Upload-Task-Id")?;
        if task.size != data.len() {
            return Err("file part size differs from uploadFile.fileSize");
        }
        let task = self
            .upload_tasks
            .remove(task_id)
            .ok_or("unknown Upload-Task-Id")?;
        let id = uuid();
        self.temporal_files.insert(
            id.clone(),
            TemporalFile {
                owner: task.owner,
                name: task.name,
                mime,
                data,
                preview,
            },
        );
        Ok(id)
    }

    /// Takes temporal file `id` for its `owner`; error 308 for anyone else's.
    pub(super) fn take_temporal_file(&mut self, id: &str, owner: &str) -> ApiResult<TemporalFile> {
        let upload = self.temporal_files.get(id).ok_or(E_NO_FILE)?;
        if upload.owner != owner {
            return Err(E_NO_FILE);
        }
        self.temporal_files.remove(id).ok_or(E_NO_FILE)
    }

    /// `uploadFile`: announces an upload, checked against the limits.
    pub(super) fn api_upload_file(&mut self, req: &Request<'_>) -> ApiResult<Value> {
        let size = req.u64_field("fileSize")?;
        let name = req.str_field("fileName")?;
        if !self.limits.allows(name, size) {
            return Err(E_UPLOAD_FAILED);
        }
        let task_id = uuid();
        self.upload_tasks.insert(
            task_id.clone(),
            UploadTask {
                owner: req.login.to_owned(),
                name: name.to_owned(),
                size,
            },
        );
        Ok(json!({ "uploadTaskId": task_id }))
    }

    /// `sendFile`: posts an uploaded file; a caption becomes a separate text message.
    pub(super) fn api_send_file(&mut self, req: &Request<'_>) -> ApiResult<Value> {
        let chat = req.str_field("chatId")?;
        let reply_to = req.opt_str_field("replyMessageId")?;
        let content = req.field("content")?;
        let temporal_id = str_field(content, "temporalFileId")?;
        let caption = match content.get("caption") {
            None | Some(Value::Null) => None,
            Some(caption) => Some(text_content(caption)?),
        };
        self.role(chat, req.login)?;
        let upload = self.take_temporal_file(temporal_id, req.login)?;
        let file_id = self.store_file(&upload.name, &upload.mime, upload.data, true);
        if let Some(file) = self.files.get_mut(&file_id) {
            file.preview = upload.preview;
        }
        let (message_id, timestamp) =
            self.post_file(req.login, chat, &file_id, reply_to, req.except())?;
        let mut response = json!({
            "chatId": chat, "messageId": message_id, "timestamp": timestamp, "fileId": file_id,
        });
        if let Some(caption) = caption {
            let (caption_id, _) =
                self.post(req.login, chat, MSG_TEXT, caption, None, req.except())?;
            response["captionMessageId"] = json!(caption_id);
        }
        Ok(response)
    }

    /// `getFileInfo`: the download URL only once the file is READY.
    pub(super) fn api_get_file_info(&mut self, req: &Request<'_>) -> ApiResult<Value> {
        let id = req.str_field("fileId")?;
        let file = self.files.get(id).ok_or(E_NO_FILE)?;
        let ready = file.ready == FILE_READY;
        let previews = file.preview.as_ref().map(|(name, mime, data)| {
            json!([{ "name": name, "size": data.len(), "mimeType": mime,
                     "downloadUrl": self.file_url(id, &file.token, "preview") }])
        });
        Ok(json!({
            "fileId": id, "name": file.name, "size": file.data.len(), "mimeType": file.mime,
            "readyState": file.ready,
            "downloadUrl": ready.then(|| self.file_url(id, &file.token, "download")),
            "previews": previews,
        }))
    }

    /// `subscribeFileProgress` (`subscribe`) and `unsubscribeFileProgress`.
    pub(super) fn api_file_progress_subscription(
        &mut self,
        req: &Request<'_>,
        subscribe: bool,
    ) -> ApiResult<Value> {
        let id = req.str_field("fileId")?;
        let file = self.files.get_mut(id).ok_or(E_NO_FILE)?;
        if subscribe {
            file.subscribers.insert(req.conn);
        } else {
            file.subscribers.remove(&req.conn);
        }
        Ok(json!({ "result": true }))
    }
}
