"""ROS 2 (NVIDIA Isaac ROS): a launch file for the isaac_ros_rtdetr nodes with this bundle's engine and sizes.

Isaac ROS's RT-DETR pipeline takes the authors' interface, which is ours: `images` (RGB / 255, NCHW) and
`orig_target_sizes` in, `labels`, `boxes`, `scores` out; its decoder publishes vision_msgs/Detection2DArray
on `detections_output`. Its own launch fragment fixes the input at 640x640; this file composes the same
nodes at the bundle's input size. Isaac's preprocessing keeps the aspect ratio and pads bottom-right (it
sends orig_target_sizes = the longer side twice, so boxes land in camera pixels); our models are trained on
stretched images, which costs a little accuracy on non-square cameras (measure it with `rtdetr-edge
parity` on your data before relying on it).
"""

LAUNCH = '''# rtdetr-edge: Isaac ROS RT-DETR pipeline for this bundle ({width}x{height}, {precision}).
#   ./build_engine.sh   (once, on the Jetson), then inside the Isaac ROS environment:
#   ros2 launch ros2/rtdetr_edge.launch.py camera_width:=1920 camera_height:=1080
# subscribes image_rect / camera_info_rect, publishes detections_output (vision_msgs/Detection2DArray)
import os

import launch
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import ComposableNodeContainer
from launch_ros.descriptions import ComposableNode

BUNDLE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_SIZE = {width}  # square: Isaac's preprocessor sends the longer camera side as both sizes
MODEL_FILE = os.path.join(BUNDLE, {artifact!r})
ENGINE_FILE = os.path.join(BUNDLE, {engine!r})
INPUT_NAMES = {inputs!r}
OUTPUT_NAMES = {outputs!r}


def generate_launch_description():
    camera_width = LaunchConfiguration("camera_width")
    camera_height = LaunchConfiguration("camera_height")
    nodes = [
        ComposableNode(name="resize_node", package="isaac_ros_image_proc",
                       plugin="nvidia::isaac_ros::image_proc::ResizeNode",
                       parameters=[{{"input_width": camera_width, "input_height": camera_height,
                                    "output_width": MODEL_SIZE, "output_height": MODEL_SIZE,
                                    "keep_aspect_ratio": True, "encoding_desired": "rgb8",
                                    "disable_padding": True}}],
                       remappings=[("image", "image_rect"), ("camera_info", "camera_info_rect")]),
        ComposableNode(name="pad_node", package="isaac_ros_image_proc",
                       plugin="nvidia::isaac_ros::image_proc::PadNode",
                       parameters=[{{"output_image_width": MODEL_SIZE, "output_image_height": MODEL_SIZE,
                                    "padding_type": "BOTTOM_RIGHT"}}],
                       remappings=[("image", "resize/image")]),
        ComposableNode(name="image_format_node", package="isaac_ros_image_proc",
                       plugin="nvidia::isaac_ros::image_proc::ImageFormatConverterNode",
                       parameters=[{{"encoding_desired": "rgb8", "image_width": MODEL_SIZE,
                                    "image_height": MODEL_SIZE}}],
                       remappings=[("image_raw", "padded_image"), ("image", "image_rgb")]),
        ComposableNode(name="image_to_tensor_node", package="isaac_ros_tensor_proc",
                       plugin="nvidia::isaac_ros::dnn_inference::ImageToTensorNode",
                       parameters=[{{"scale": True, "tensor_name": "image"}}],
                       remappings=[("image", "image_rgb"), ("tensor", "normalized_tensor")]),
        ComposableNode(name="interleaved_to_planar_node", package="isaac_ros_tensor_proc",
                       plugin="nvidia::isaac_ros::dnn_inference::InterleavedToPlanarNode",
                       parameters=[{{"input_tensor_shape": [MODEL_SIZE, MODEL_SIZE, 3]}}],
                       remappings=[("interleaved_tensor", "normalized_tensor")]),
        ComposableNode(name="reshape_node", package="isaac_ros_tensor_proc",
                       plugin="nvidia::isaac_ros::dnn_inference::ReshapeNode",
                       parameters=[{{"output_tensor_name": "input_tensor", "input_tensor_layout": "CHW",
                                    "output_tensor_layout": "NCHW",
                                    "input_tensor_shape": [3, MODEL_SIZE, MODEL_SIZE],
                                    "output_tensor_shape": [1, 3, MODEL_SIZE, MODEL_SIZE]}}],
                       remappings=[("tensor", "planar_tensor")]),
        ComposableNode(name="rtdetr_preprocessor", package="isaac_ros_rtdetr",
                       plugin="nvidia::isaac_ros::rtdetr::RtDetrPreprocessorNode",
                       parameters=[{{"image_width": camera_width, "image_height": camera_height,
                                    "output_image_tensor_name": INPUT_NAMES[0],
                                    "output_size_tensor_name": INPUT_NAMES[1]}}],
                       remappings=[("encoded_tensor", "reshaped_tensor")]),
        ComposableNode(name="tensor_rt", package="isaac_ros_tensor_rt",
                       plugin="nvidia::isaac_ros::dnn_inference::TensorRTNode",
                       parameters=[{{"model_file_path": MODEL_FILE, "engine_file_path": ENGINE_FILE,
                                    "input_tensor_names": list(INPUT_NAMES), "input_binding_names": list(INPUT_NAMES),
                                    "output_tensor_names": list(OUTPUT_NAMES),
                                    "output_binding_names": list(OUTPUT_NAMES),
                                    "force_engine_update": False, "verbose": False}}]),
        ComposableNode(name="rtdetr_decoder", package="isaac_ros_rtdetr",
                       plugin="nvidia::isaac_ros::rtdetr::RtDetrDecoderNode",
                       parameters=[{{"confidence_threshold": LaunchConfiguration("confidence_threshold")}}]),
    ]
    container = ComposableNodeContainer(package="rclcpp_components", name="rtdetr_container", namespace="",
                                        executable="component_container_mt", composable_node_descriptions=nodes,
                                        output="screen")
    return launch.LaunchDescription([
        DeclareLaunchArgument("camera_width", default_value="1920", description="camera image width"),
        DeclareLaunchArgument("camera_height", default_value="1080", description="camera image height"),
        DeclareLaunchArgument("confidence_threshold", default_value="0.5", description="minimum score"),
        container,
    ])
'''


def launch_file(info) -> str:
    from ..vocab import OUTPUT_NAMES

    return LAUNCH.format(width=int(info["width"]), height=int(info["height"]), precision=info["precision"],
                         artifact=info["artifact"], engine=info["engine"], inputs=tuple(info["inputs"]),
                         outputs=tuple(OUTPUT_NAMES))


def write(folder, info, target) -> dict:
    if info["width"] != info["height"]:
        from ..errors import UserError

        raise UserError(f"--integrations ros2: Isaac ROS's RT-DETR preprocessor letterboxes to a square and sends "
                        f"the longer side as both sizes; this bundle's input is {info['height']}x{info['width']} "
                        f"(export a square --imgsz for ROS 2); nothing was written")
    out = folder / "ros2"
    out.mkdir()
    (out / "rtdetr_edge.launch.py").write_text(launch_file(info))
    return {"folder": "ros2", "launch": "ros2/rtdetr_edge.launch.py", "package": "isaac_ros_rtdetr",
            "publishes": "detections_output (vision_msgs/Detection2DArray)", "checked_on_device": False}
