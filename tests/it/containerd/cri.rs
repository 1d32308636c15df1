//! kubelet's side of the CRI v1 API, for the tests: its calls to containerd's image and
//! runtime services over containerd's unix socket (Debian ships no crictl). Each call returns
//! containerd's own error message, so a test can assert what kubelet would be told.

use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    AuthConfig, ContainerConfig, ContainerStatus, ContainerStatusRequest, CreateContainerRequest,
    ImageSpec, ImageStatusRequest, ListPodSandboxRequest, PodSandbox, PodSandboxConfig,
    PodSandboxStatusRequest, PodSandboxStatusResponse, PullImageRequest, RemoveContainerRequest,
    RemovePodSandboxRequest, RunPodSandboxRequest, RuntimeCondition, StartContainerRequest,
    StatusRequest, StopPodSandboxRequest,
};
use std::path::Path;
use tonic::transport::{Channel, Endpoint, Uri};

/// A connection to one containerd; `tokio`'s runtime lives as long as the channel.
pub struct Cri {
    runtime: tokio::runtime::Runtime,
    channel: Channel,
}

fn message(status: tonic::Status) -> String {
    status.message().to_string()
}

impl Cri {
    pub fn connect(socket: &Path) -> Result<Cri, String> {
        let socket = socket.to_path_buf();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        let channel = runtime.block_on(async move {
            // The URI is never dialled: the connector opens the socket.
            Endpoint::try_from("http://[::]:50051")
                .unwrap()
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let socket = socket.clone();
                    async move {
                        let stream = tokio::net::UnixStream::connect(socket).await?;
                        Ok::<_, std::io::Error>(TokioIo::new(stream))
                    }
                }))
                .await
                .map_err(|e| format!("connecting to containerd: {e}"))
        })?;
        Ok(Cri { runtime, channel })
    }

    fn images(&self) -> ImageServiceClient<Channel> {
        ImageServiceClient::new(self.channel.clone())
    }

    fn pods(&self) -> RuntimeServiceClient<Channel> {
        RuntimeServiceClient::new(self.channel.clone())
    }

    /// Pulls `image` with `auth`, then asks for its status; the image's repo tags.
    pub fn pull(&self, image: &str, auth: Option<AuthConfig>) -> Result<Vec<String>, String> {
        let spec = ImageSpec {
            image: image.to_string(),
            ..Default::default()
        };
        self.runtime.block_on(async {
            let mut images = self.images();
            images
                .pull_image(PullImageRequest {
                    image: Some(spec.clone()),
                    auth,
                    sandbox_config: None,
                })
                .await
                .map_err(message)?;
            let status = images
                .image_status(ImageStatusRequest {
                    image: Some(spec),
                    verbose: false,
                })
                .await
                .map_err(message)?
                .into_inner();
            Ok(status.image.map(|i| i.repo_tags).unwrap_or_default())
        })
    }

    /// The runtime's `NetworkReady` condition, which kubelet turns into the node's readiness.
    pub fn network_condition(&self) -> RuntimeCondition {
        let status = self
            .runtime
            .block_on(self.pods().status(StatusRequest { verbose: false }))
            .unwrap_or_else(|e| panic!("CRI Status: {}", e.message()))
            .into_inner();
        status
            .status
            .into_iter()
            .flat_map(|s| s.conditions)
            .find(|c| c.r#type == "NetworkReady")
            .expect("containerd reports no NetworkReady condition")
    }

    /// RunPodSandbox with the default runtime handler (runc); the sandbox's id.
    pub fn run_pod(&self, config: &PodSandboxConfig) -> Result<String, String> {
        let request = RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        };
        let response = self
            .runtime
            .block_on(self.pods().run_pod_sandbox(request))
            .map_err(message)?;
        Ok(response.into_inner().pod_sandbox_id)
    }

    /// ListPodSandbox: every sandbox containerd keeps, ready or not.
    pub fn list_pods(&self) -> Vec<PodSandbox> {
        self.runtime
            .block_on(
                self.pods()
                    .list_pod_sandbox(ListPodSandboxRequest { filter: None }),
            )
            .unwrap_or_else(|e| panic!("ListPodSandbox: {}", e.message()))
            .into_inner()
            .items
    }

    /// PodSandboxStatus, verbose: `info["info"]` holds containerd's runtime spec and CNI result.
    pub fn pod_status(&self, id: &str) -> PodSandboxStatusResponse {
        let request = PodSandboxStatusRequest {
            pod_sandbox_id: id.to_string(),
            verbose: true,
        };
        self.runtime
            .block_on(self.pods().pod_sandbox_status(request))
            .unwrap_or_else(|e| panic!("PodSandboxStatus {id}: {}", e.message()))
            .into_inner()
    }

    /// CreateContainer then StartContainer in sandbox `pod`; the container's id.
    pub fn start_container(
        &self,
        pod: &str,
        config: ContainerConfig,
        pod_config: &PodSandboxConfig,
    ) -> Result<String, String> {
        self.runtime.block_on(async {
            let mut pods = self.pods();
            let id = pods
                .create_container(CreateContainerRequest {
                    pod_sandbox_id: pod.to_string(),
                    config: Some(config),
                    sandbox_config: Some(pod_config.clone()),
                })
                .await
                .map_err(message)?
                .into_inner()
                .container_id;
            pods.start_container(StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .map_err(message)?;
            Ok(id)
        })
    }

    pub fn container_status(&self, id: &str) -> ContainerStatus {
        let request = ContainerStatusRequest {
            container_id: id.to_string(),
            verbose: false,
        };
        self.runtime
            .block_on(self.pods().container_status(request))
            .unwrap_or_else(|e| panic!("ContainerStatus {id}: {}", e.message()))
            .into_inner()
            .status
            .unwrap_or_else(|| panic!("ContainerStatus {id}: no status"))
    }

    pub fn remove_container(&self, id: &str) {
        let request = RemoveContainerRequest {
            container_id: id.to_string(),
        };
        self.runtime
            .block_on(self.pods().remove_container(request))
            .unwrap_or_else(|e| panic!("RemoveContainer {id}: {}", e.message()));
    }

    /// StopPodSandbox then RemovePodSandbox, as kubelet does when a pod goes.
    pub fn stop_and_remove_pod(&self, id: &str) -> Result<(), String> {
        self.runtime.block_on(async {
            let mut pods = self.pods();
            pods.stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: id.to_string(),
            })
            .await
            .map_err(message)?;
            pods.remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: id.to_string(),
            })
            .await
            .map_err(message)?;
            Ok(())
        })
    }
}
