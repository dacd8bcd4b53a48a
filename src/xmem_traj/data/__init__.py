"""nuScenes (through the official devkit) → agent sequences: which dataroot and splits
(sources), target records (agent_index), pixels (frames, projection), the seed's Dataset
(agent_dataset) and multi-object camera videos (videos). Nothing here knows about XMem."""
